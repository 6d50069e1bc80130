"""Redis adapter for deduplication, safe across requests, restarts and replicas.

A message is *claimed* (pending) before it is published, *confirmed* once Kafka
has acknowledged it, and *released* if publishing failed, so a resend is never
dropped because of a claim whose publish did not happen. A claim left behind
by a crashed replica goes stale after ``stale_ms`` and can be taken over.
Each step is one script call for a whole request (a single Redis, not Cluster).
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from enum import IntEnum

from redis.asyncio import Redis

from .dedup import DAY_S, FINGERPRINT_BYTES, Slot

# KEYS: current1, previous1, current2, previous2, ...; ARGV: now, stale, ttl, fp1 .. fp2 ..
# (the fingerprints in one argument, 8 bytes each: a request is one argument, not 100)
_CLAIM = """
local now, stale, ttl = tonumber(ARGV[1]), tonumber(ARGV[2]), ARGV[3]
local out = {}
for m = 1, #KEYS / 2 do
  local fp = string.sub(ARGV[4], 8 * m - 7, 8 * m)
  local state = 1
  for k = 2 * m, 2 * m - 1, -1 do
    local v = redis.call('HGET', KEYS[k], fp)
    if v then
      if v == 'd' then state = 2 break end
      if now - tonumber(string.sub(v, 2)) < stale then state = 3 break end
    end
  end
  if state == 1 then
    redis.call('HSET', KEYS[2 * m - 1], fp, 'p' .. ARGV[1])
    redis.call('EXPIRE', KEYS[2 * m - 1], ttl)
  end
  out[m] = state
end
return out
"""

# KEYS: current1, current2, ...; ARGV: 'd' to confirm or '' to release, fp1 .. fp2 ..
_SETTLE = """
for m = 1, #KEYS do
  local fp = string.sub(ARGV[2], 8 * m - 7, 8 * m)
  if ARGV[1] == 'd' then
    redis.call('HSET', KEYS[m], fp, 'd')
  else
    redis.call('HDEL', KEYS[m], fp)
  end
end
return #KEYS
"""


class Claim(IntEnum):
    CLAIMED = 1
    SEEN = 2
    PENDING = 3


class DedupStore:
    def __init__(self, redis: Redis, *, stale_ms: int) -> None:
        self._claim = redis.register_script(_CLAIM)
        self._settle = redis.register_script(_SETTLE)
        self._stale_ms = stale_ms

    async def claim(self, slots: Sequence[Slot]) -> list[Claim]:
        if not slots:
            return []
        keys = [k for s in slots for k in (s.current, s.previous)]
        args = [int(time.time() * 1000), self._stale_ms, 2 * DAY_S + 3600,
                _joined(slots)]
        return [Claim(int(r)) for r in await self._claim(keys=keys, args=args)]

    async def confirm(self, slots: Sequence[Slot]) -> None:
        if slots:
            await self._settle(keys=[s.current for s in slots],
                               args=["d", _joined(slots)])

    async def release(self, slots: Sequence[Slot]) -> None:
        if slots:
            await self._settle(keys=[s.current for s in slots],
                               args=["", _joined(slots)])


def _joined(slots: Sequence[Slot]) -> bytes:
    if any(len(s.fingerprint) != FINGERPRINT_BYTES for s in slots):
        raise ValueError(f"a dedup fingerprint is {FINGERPRINT_BYTES} bytes")
    return b"".join(s.fingerprint for s in slots)
