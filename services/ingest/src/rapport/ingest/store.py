"""Redis adapter for deduplication, safe across requests, restarts and replicas.

A message is *claimed* (pending) before it is published, *confirmed* once Kafka
has acknowledged it, and *released* if publishing failed, so a resend is never
dropped because of a claim whose publish did not happen. A claim left behind
by a crashed replica goes stale after ``stale_ms`` and can be taken over.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from enum import StrEnum

from redis.asyncio import Redis

from .dedup import DAY_S, Slot

_CLAIM = """
local now = tonumber(ARGV[2])
local stale = tonumber(ARGV[3])
for i = 2, 1, -1 do
  local v = redis.call('HGET', KEYS[i], ARGV[1])
  if v then
    if v == 'd' then return 'seen' end
    if now - tonumber(string.sub(v, 2)) < stale then return 'pending' end
  end
end
redis.call('HSET', KEYS[1], ARGV[1], 'p' .. ARGV[2])
redis.call('EXPIRE', KEYS[1], ARGV[4])
return 'claimed'
"""


class Claim(StrEnum):
    CLAIMED = "claimed"
    SEEN = "seen"
    PENDING = "pending"


class DedupStore:
    def __init__(self, redis: Redis, *, stale_ms: int) -> None:
        self._redis = redis
        self._claim = redis.register_script(_CLAIM)
        self._stale_ms = stale_ms

    async def claim(self, slots: Sequence[Slot]) -> list[Claim]:
        if not slots:
            return []
        now_ms = int(time.time() * 1000)
        async with self._redis.pipeline(transaction=False) as pipe:
            for s in slots:
                await self._claim(keys=[s.current, s.previous],
                                  args=[s.fingerprint, now_ms, self._stale_ms, 2 * DAY_S + 3600],
                                  client=pipe)
            results = await pipe.execute()
        return [Claim(r.decode() if isinstance(r, bytes) else r) for r in results]

    async def confirm(self, slots: Sequence[Slot]) -> None:
        if slots:
            async with self._redis.pipeline(transaction=False) as pipe:
                for s in slots:
                    pipe.hset(s.current, s.fingerprint, b"d")
                await pipe.execute()

    async def release(self, slots: Sequence[Slot]) -> None:
        if slots:
            async with self._redis.pipeline(transaction=False) as pipe:
                for s in slots:
                    pipe.hdel(s.current, s.fingerprint)
                await pipe.execute()
