"""Redis adapter: the erasure markers scoring reads."""

from __future__ import annotations

from redis.asyncio import Redis

from rapport.shared import keys
from rapport.shared.privacy import Fingerprints


class ScoringStore:
    def __init__(self, redis: Redis, fingerprints: Fingerprints) -> None:
        self._redis = redis
        self._fingerprints = fingerprints

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
