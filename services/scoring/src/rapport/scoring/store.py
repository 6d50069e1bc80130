"""Redis adapter: profiles (read), scores and offer response statistics (written)."""

from __future__ import annotations

from datetime import datetime

from redis.asyncio import Redis

from rapport.shared import keys
from rapport.shared.events import OfferOutcome
from rapport.shared.privacy import Fingerprints
from rapport.shared.profiles import CustomerProfile

from .domain import Scores

# Count an outcome once: the marker and the counter change together or not at all.
_COUNT_ONCE = """
if redis.call('SET', KEYS[1], '1', 'NX', 'EX', ARGV[2]) then
  redis.call('HINCRBY', KEYS[2], ARGV[1], 1)
  return 1
end
return 0
"""

# Save scores unless the person was erased at or after this profile version. Check and
# write are one step, so an erasure cannot fall between them; a marker that is no number
# counts as an erasure of unknown time, as does a profile without ``updated_at`` (ARGV[1]
# empty): when in doubt, nothing personal is written back.
_SAVE_UNLESS_ERASED = """
local erased = redis.call('GET', KEYS[1])
if erased then
  local at, version = tonumber(erased), tonumber(ARGV[1])
  if at == nil or version == nil or version <= at then return 0 end
end
redis.call('SET', KEYS[2], ARGV[2])
return 1
"""


class ScoringStore:
    def __init__(self, redis: Redis, fingerprints: Fingerprints,
                 outcome_memory_s: int = 180 * 86400) -> None:
        self._redis = redis
        self._fingerprints = fingerprints
        self._count_once = redis.register_script(_COUNT_ONCE)
        self._save_unless_erased = redis.register_script(_SAVE_UNLESS_ERASED)
        self._memory = outcome_memory_s

    async def profile(self, customer_id: str) -> CustomerProfile | None:
        raw = await self._redis.get(keys.profile(customer_id))
        return None if raw is None else CustomerProfile.from_bytes(raw)

    async def resolve(self, identifier: str) -> str | None:
        for kind in ("user_id", "anonymous_id"):
            raw = await self._redis.get(keys.identity(kind, identifier))
            if raw is not None:
                return raw.decode()
        return None

    async def save_scores(self, scores: Scores, profile_updated_at: datetime | None) -> bool:
        """Store the scores of a profile version; False (nothing written) when the person
        was erased at or after it: a lagging consumer must not bring their scores back,
        while someone who came back after erasure is scored again."""
        marker = keys.erased_profile(self._fingerprints.profile(scores.customer_id))
        version = "" if profile_updated_at is None else str(
            int(profile_updated_at.timestamp() * 1000))
        saved = await self._save_unless_erased(
            keys=[marker, keys.scores(scores.customer_id)],
            args=[version, scores.model_dump_json()])
        return bool(saved)

    async def forget_scores(self, customer_id: str) -> None:
        """The profile was erased or merged away (its tombstone): its scores go too."""
        await self._redis.delete(keys.scores(customer_id))

    async def count_outcome(self, outcome: OfferOutcome) -> bool:
        """True when this outcome was new and got counted."""
        marker = keys.outcome_seen(outcome.decision_id, outcome.action_id, outcome.outcome.value)
        counted = await self._count_once(keys=[marker, keys.offer_stats(outcome.offer_id)],
                                         args=[outcome.outcome.value, self._memory])
        return bool(counted)

    async def offer_counts(self, offer_id: str) -> dict[str, int]:
        raw = await self._redis.hgetall(keys.offer_stats(offer_id))
        return {k.decode(): int(v) for k, v in raw.items() if k != b"propensity"}

    async def set_propensity(self, offer_id: str, value: float) -> None:
        await self._redis.hset(keys.offer_stats(offer_id), "propensity", f"{value:.6f}")
