"""Redis adapter: profiles (read), scores and offer response statistics (written)."""

from __future__ import annotations

from redis.asyncio import Redis

from rapport.shared import keys
from rapport.shared.events import OfferOutcome
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


class ScoringStore:
    def __init__(self, redis: Redis, outcome_memory_s: int = 180 * 86400) -> None:
        self._redis = redis
        self._count_once = redis.register_script(_COUNT_ONCE)
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

    async def save_scores(self, scores: Scores) -> None:
        await self._redis.set(keys.scores(scores.customer_id), scores.model_dump_json())

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
