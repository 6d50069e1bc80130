"""Where fitted models are kept: every version, and which one is in use."""

from __future__ import annotations

from datetime import datetime

from redis.asyncio import Redis

from rapport.shared import keys
from rapport.shared.scores.model import ClvModel

KEEP_VERSIONS = 50


class ModelStore:
    def __init__(self, redis: Redis) -> None:
        self._redis = redis

    async def next_version(self) -> str:
        n = await self._redis.incr(keys.clv_version_counter())
        return f"clv-{n}"

    async def put_in_use(self, model: ClvModel, fitted_at: datetime) -> None:
        """Store a fit and make it the model in use (one step: readers see the old or
        the new, never a version without its model); the oldest past the last
        :data:`KEEP_VERSIONS` are dropped."""
        async with self._redis.pipeline(transaction=True) as tx:
            tx.set(keys.clv_model(model.version), model.model_dump_json())
            tx.zadd(keys.clv_versions(), {model.version: fitted_at.timestamp()})
            tx.set(keys.clv_current(), model.version)
            await tx.execute()
        stale = await self._redis.zrange(keys.clv_versions(), 0, -KEEP_VERSIONS - 1)
        if stale:
            async with self._redis.pipeline(transaction=True) as tx:
                tx.delete(*(keys.clv_model(v.decode()) for v in stale))
                tx.zrem(keys.clv_versions(), *stale)
                await tx.execute()

    async def history(self, limit: int = 10) -> list[ClvModel]:
        versions = await self._redis.zrevrange(keys.clv_versions(), 0, limit - 1)
        if not versions:
            return []
        raws = await self._redis.mget([keys.clv_model(v.decode()) for v in versions])
        return [ClvModel.model_validate_json(r) for r in raws if r is not None]

    async def lock(self, holder: str, ttl_s: int) -> bool:
        return bool(await self._redis.set(keys.clv_fit_lock(), holder, nx=True, ex=ttl_s))

    async def unlock(self, holder: str) -> None:
        if (await self._redis.get(keys.clv_fit_lock())) == holder.encode():
            await self._redis.delete(keys.clv_fit_lock())
