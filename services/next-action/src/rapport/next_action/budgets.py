"""Daily offer budgets in Redis, paced through the UTC day (:func:`.limits.paced_cap`).

One counter per offer, what it counts and UTC day (``keys.offer_budget``, kept two
days). The counters cannot live in the per-person contact script (Redis Cluster: one
script, one slot), so a decision reads them before (:meth:`BudgetBook.spent`: offers
already at their paced cap are not allowed) and counts the offers it made after
(:meth:`BudgetBook.count`, a conditional increment that refuses over the cap; a
refused offer is dropped from the decision).

What concurrency allows: a ``made`` budget never goes over its paced cap (the
increment refuses), but it can fall short of it: a decision dropped at the count
does not take the next candidate instead, and one that fails after counting leaves
its count. An ``accepted`` budget is counted when an acceptance is recorded, which
cannot be refused: every offer made while under the cap may still be accepted later,
so it can go over by the acceptances outstanding.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime

from redis.asyncio import Redis

from rapport.shared import keys

from .catalog import Offer
from .limits import day_of, paced_cap

TTL_S = 2 * 86400

# KEYS[1] the day's counter; ARGV: cap, ttl. Returns {1 counted | 0 refused, count}.
_COUNT = """
local n = tonumber(redis.call('GET', KEYS[1]) or '0')
if n >= tonumber(ARGV[1]) then return {0, n} end
n = redis.call('INCR', KEYS[1])
redis.call('EXPIRE', KEYS[1], ARGV[2])
return {1, n}
"""


@dataclass(frozen=True)
class Spent:
    """An offer's budget today: how many were counted, and the paced cap at the time."""

    counted: int
    cap: int

    @property
    def exhausted(self) -> bool:
        return self.counted >= self.cap


class BudgetBook:
    def __init__(self, redis: Redis, ahead: float) -> None:
        self._redis = redis
        self._ahead = ahead
        self._count = redis.register_script(_COUNT)

    def _key(self, offer: Offer, at: datetime) -> str:
        assert offer.budget is not None
        return keys.offer_budget(offer.offer_id, offer.budget.counts, day_of(at))

    def cap(self, offer: Offer, at: datetime) -> int:
        assert offer.budget is not None
        return paced_cap(offer.budget.per_day, at, self._ahead)

    async def spent(self, offers: Sequence[Offer], at: datetime) -> dict[str, Spent]:
        """Today's count and paced cap of every offer with a budget."""
        budgeted = [o for o in offers if o.budget is not None]
        if not budgeted:
            return {}
        async with self._redis.pipeline(transaction=False) as pipe:
            for offer in budgeted:
                pipe.get(self._key(offer, at))
            values = await pipe.execute()
        return {o.offer_id: Spent(int(v or 0), self.cap(o, at))
                for o, v in zip(budgeted, values, strict=True)}

    async def count(self, offers: Sequence[Offer], at: datetime) -> dict[str, Spent]:
        """Count the made offers whose budget counts ``made``; returns those refused
        (already at the paced cap), with the count that refused them."""
        counted = [o for o in offers if o.budget is not None and o.budget.counts == "made"]
        if not counted:
            return {}
        async with self._redis.pipeline(transaction=False) as pipe:
            for offer in counted:
                await self._count(keys=[self._key(offer, at)],
                                  args=[self.cap(offer, at), TTL_S], client=pipe)
            results = await pipe.execute()
        return {o.offer_id: Spent(int(n), self.cap(o, at))
                for o, (ok, n) in zip(counted, results, strict=True) if not ok}

    async def accepted(self, offer: Offer, at: datetime) -> None:
        """Count an acceptance against an ``accepted`` budget (never refused)."""
        if offer.budget is None or offer.budget.counts != "accepted":
            return
        key = self._key(offer, at)
        async with self._redis.pipeline(transaction=True) as tx:  # one key: one slot
            tx.incr(key)
            tx.expire(key, TTL_S)
            await tx.execute()
