"""Redis adapter of attribution: windows opened by logged decisions, orders and refunds
counted into them by one script per fact (in the person's slot), and closed windows
handed out once they are due.

Each write is once: a window is opened only if absent, a fact carries its message's
once-marker, and a closing window stops taking facts before it is learnt from. So the
at-least-once topics (a redelivered batch, a replay) change nothing the second time.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from typing import TypeVar

from redis.asyncio import Redis

from rapport.shared import keys
from rapport.shared.events import OrderFact
from rapport.shared.redis_store import get_many

from .attribution import Window

FACT_TTL_S = 120 * 86400
T = TypeVar("T")
R = TypeVar("R")

# KEYS: decisions, window, pending orders; ARGV: decided at, decision id, ttl, window,
# fact ttl, the window's fields...
_OPEN = """
if redis.call('EXISTS', KEYS[2]) == 1 then return {0, 0} end
redis.call('HSET', KEYS[2], unpack(ARGV, 6))
redis.call('EXPIRE', KEYS[2], ARGV[3])
redis.call('ZADD', KEYS[1], ARGV[1], ARGV[2])
redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', tonumber(ARGV[1]) - tonumber(ARGV[3]))
redis.call('EXPIRE', KEYS[1], ARGV[3])
local claimed = 0
local t0 = tonumber(ARGV[1])
local held = redis.call('ZRANGEBYSCORE', KEYS[3], t0, t0 + tonumber(ARGV[4]), 'WITHSCORES')
for i = 1, #held, 2 do
  local latest = redis.call('ZREVRANGEBYSCORE', KEYS[1], held[i + 1], '-inf', 'LIMIT', 0, 1)
  if latest[1] == ARGV[2] then
    local o = cjson.decode(held[i])
    redis.call('SET', o.k, ARGV[2], 'EX', ARGV[5])
    if o.o ~= o.k then redis.call('SET', o.o, ARGV[2], 'EX', ARGV[5]) end
    redis.call('HINCRBY', KEYS[2], 'orders', 1)
    redis.call('HINCRBYFLOAT', KEYS[2], 'revenue', o.r)
    redis.call('HINCRBYFLOAT', KEYS[2], 'margin', o.m)
    redis.call('ZREM', KEYS[3], held[i])
    claimed = claimed + 1
  end
end
return {1, claimed}
"""

# KEYS: decisions, fact marker, order key (the marker for none), pending orders; ARGV:
# time, window, kind, margin, revenue, ttl, window-key prefix, how long an order waits
_FACT = """
if redis.call('EXISTS', KEYS[2]) == 1 then return {'duplicate', ''} end
local d = false
if ARGV[3] == 'order' then
  local found = redis.call('ZREVRANGEBYSCORE', KEYS[1], ARGV[1],
                           tonumber(ARGV[1]) - tonumber(ARGV[2]), 'LIMIT', 0, 1)
  d = found[1] or false
elseif KEYS[3] ~= KEYS[2] then
  d = redis.call('GET', KEYS[3])
  if d == '' then d = false end
end
redis.call('SET', KEYS[2], d or '', 'EX', ARGV[6])
if not d then
  if ARGV[3] == 'order' then
    redis.call('ZADD', KEYS[4], ARGV[1],
               cjson.encode({m = ARGV[4], r = ARGV[5], k = KEYS[2], o = KEYS[3]}))
    redis.call('ZREMRANGEBYSCORE', KEYS[4], '-inf', tonumber(ARGV[1]) - tonumber(ARGV[8]))
    redis.call('EXPIRE', KEYS[4], ARGV[8])
  end
  return {'unattributed', ''}
end
if ARGV[3] == 'order' and KEYS[3] ~= KEYS[2] then
  redis.call('SET', KEYS[3], d, 'EX', ARGV[6])
end
local w = ARGV[7] .. d
if redis.call('EXISTS', w) == 0 then return {'expired', d} end
if redis.call('HEXISTS', w, 'closing') == 1 then return {'late', d} end
if ARGV[3] == 'order' then
  redis.call('HINCRBY', w, 'orders', 1)
  redis.call('HINCRBYFLOAT', w, 'revenue', ARGV[5])
else
  redis.call('HINCRBY', w, 'refunds', 1)
end
redis.call('HINCRBYFLOAT', w, 'margin', ARGV[4])
return {'attributed', d}
"""

_CLOSE = """
if redis.call('EXISTS', KEYS[1]) == 0 then return false end
redis.call('HSET', KEYS[1], 'closing', '1')
return redis.call('HGETALL', KEYS[1])
"""


@dataclass(frozen=True)
class Opened:
    windows: int
    """Windows opened (a window already open, or replayed after it closed, is not)."""
    claimed: int
    """Orders heard before their decision was, taken by its window as it opened."""


@dataclass(frozen=True)
class Counted:
    result: str
    """attributed, unattributed (no decision in the window), late (its window had
    closed), expired (the window was forgotten), duplicate (heard before), erased."""
    decision_id: str | None = None


async def _gathered(work: Callable[[T], Awaitable[R]], items: Sequence[T],
                    width: int = 64) -> list[R]:
    """``work`` on every item, ``width`` at a time (each its own script, in its
    person's slot), results in order. Two facts of one person keep their order: a
    person's facts are run one after the other."""
    by_person: dict[str, list[int]] = {}
    for i, item in enumerate(items):
        by_person.setdefault(getattr(item, "customer", str(i)), []).append(i)
    out: list[R | None] = [None] * len(items)
    gate = asyncio.Semaphore(width)

    async def person(indexes: list[int]) -> None:
        async with gate:
            for i in indexes:
                out[i] = await work(items[i])

    await asyncio.gather(*(person(ix) for ix in by_person.values()))
    return out  # type: ignore[return-value]


def _member(w_customer: str, decision_id: str) -> str:
    return f"{w_customer}|{decision_id}"


class AttributionStore:
    def __init__(self, redis: Redis, *, window_s: float, grace_s: float,
                 margin_rate: float) -> None:
        self._redis = redis
        self._window = window_s
        self._grace = grace_s
        self._rate = margin_rate
        self._open = redis.register_script(_OPEN)
        self._fact = redis.register_script(_FACT)
        self._close = redis.register_script(_CLOSE)

    @property
    def ttl_s(self) -> int:
        return int(self._window + self._grace) + 86400

    async def _erased(self, fingerprints: Sequence[str]) -> set[str]:
        unique = sorted(set(fingerprints))
        if not unique:
            return set()
        raws = await get_many(self._redis, [keys.erased_profile(f) for f in unique])
        return {f for f, r in zip(unique, raws, strict=True) if r is not None}

    @property
    def hold_s(self) -> int:
        """How long an order with no decision to take it waits for one logged late: as
        long as a decision's window stays open, after which none is opened any more."""
        return int(self._window + self._grace) + 1

    async def open(self, windows: Sequence[Window], now_s: float) -> Opened:
        """Open each window once, taking the person's orders heard before it that it is
        the most recent decision for. Not for an erased person, and not a window that
        would be closed already (a replayed log reopens nothing: it was learnt from when
        it closed)."""
        erased = await self._erased([w.customer for w in windows])
        # A person's newest first: an order waiting for either of two decisions logged
        # late goes to the later one (the most recent before it), whichever opens first.
        fresh = sorted((w for w in windows if w.customer not in erased
                        and w.decided_at + self._window + self._grace > now_s),
                       key=lambda w: -w.decided_at)

        async def one(w: Window) -> tuple[int, int]:
            flat = [x for kv in w.fields().items() for x in kv]
            opened, claimed = await self._open(
                keys=[keys.attribution_decisions(w.customer),
                      keys.attribution_window(w.customer, w.decision_id),
                      keys.attribution_pending(w.customer)],
                args=[repr(w.decided_at), w.decision_id, self.ttl_s, repr(self._window),
                      FACT_TTL_S, *flat])
            return int(opened), int(claimed)

        done = await _gathered(one, fresh)
        if fresh:
            await self._redis.zadd(keys.attribution_open(), {
                _member(w.customer, w.decision_id): w.decided_at + self._window + self._grace
                for w in fresh})
        return Opened(sum(o for o, _ in done), sum(c for _, c in done))

    async def count(self, facts: Sequence[OrderFact]) -> list[Counted]:
        erased = await self._erased([f.customer for f in facts])

        async def one(f: OrderFact) -> Counted:
            if f.customer in erased:
                return Counted("erased")
            marker = keys.attribution_fact_seen(f.customer, f.message_id)
            order = keys.attribution_order(f.customer, f.order_id) if f.order_id else marker
            result, decision = await self._fact(
                keys=[keys.attribution_decisions(f.customer), marker, order,
                      keys.attribution_pending(f.customer)],
                args=[repr(f.occurred_at.timestamp()), repr(self._window), f.kind,
                      repr(round(f.margin(self._rate), 4)), repr(f.revenue), FACT_TTL_S,
                      keys.attribution_window(f.customer, ""), self.hold_s])
            return Counted(result.decode() if isinstance(result, bytes) else result,
                           (decision.decode() if isinstance(decision, bytes)
                            else decision) or None)

        return await _gathered(one, facts)

    async def due(self, now_s: float, limit: int = 500) -> list[tuple[str, str]]:
        members = await self._redis.zrangebyscore(keys.attribution_open(), "-inf", now_s,
                                                  start=0, num=limit)
        return [tuple(m.decode().split("|", 1)) for m in members]  # type: ignore[misc]

    async def close(self, due: Sequence[tuple[str, str]]) -> list[Window]:
        """The due windows, closed to further facts (a window already closing is handed
        out again: whether it was learnt from is the learner's once-marker)."""
        out = []
        for customer, decision_id in due:
            raw = await self._close(keys=[keys.attribution_window(customer, decision_id)])
            if raw:
                it = iter(raw)
                out.append(Window.from_fields(dict(zip(it, it, strict=True))))
        return out

    async def forget(self, due: Sequence[tuple[str, str]]) -> None:
        if due:
            await self._redis.zrem(keys.attribution_open(), *(_member(c, d) for c, d in due))
