"""Redis adapter: erasure markers (read) and offer response statistics (written)."""

from __future__ import annotations

from redis.asyncio import Redis

from rapport.shared import keys
from rapport.shared.events import OfferOutcome
from rapport.shared.privacy import Fingerprints

# Count an outcome once: the marker and the counter change together or not at all.
_COUNT_ONCE = """
if redis.call('SET', KEYS[1], '1', 'NX', 'EX', ARGV[2]) then
  redis.call('HINCRBY', KEYS[2], ARGV[1], 1)
  return 1
end
return 0
"""

class ScoringStore:
    def __init__(self, redis: Redis, fingerprints: Fingerprints,
                 outcome_memory_s: int = 180 * 86400) -> None:
        self._redis = redis
        self._fingerprints = fingerprints
        self._count_once = redis.register_script(_COUNT_ONCE)
        self._memory = outcome_memory_s

    async def erased_markers(self, customer_ids: list[str]) -> list[int | None]:
        """When each profile was erased (ms since the epoch), None for those who were
        not; a marker that is no number reads as erased at an unknown time (any version
        is older): when in doubt, nothing of the person is counted."""
        raws = await self._redis.mget(
            [keys.erased_profile(self._fingerprints.profile(c)) for c in customer_ids])
        out: list[int | None] = []
        for raw in raws:
            if raw is None:
                out.append(None)
                continue
            try:
                out.append(int(raw))
            except ValueError:
                out.append(2**62)
        return out

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
