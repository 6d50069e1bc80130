"""Redis adapter: the catalog and the policies (versioned, replaced whole, cached for a
moment), decisions and their due outcomes (customers are read through
:class:`rapport.shared.customers.CustomerReadModel`)."""

from __future__ import annotations

import time
from collections.abc import Awaitable, Callable
from typing import Generic, TypeVar

from pydantic import BaseModel
from redis.asyncio import Redis
from redis.exceptions import WatchError

from rapport.shared import keys
from rapport.shared.privacy import Fingerprints

from .catalog import Catalog
from .domain import Decision
from .policies import DEFAULT, PolicyConfig

M = TypeVar("M", bound=BaseModel)


class Cached(Generic[M]):
    """The last value read, reused for ``ttl_s``; the last good one while Redis fails."""

    def __init__(self, read: Callable[[], Awaitable[M]], ttl_s: float) -> None:
        self._read = read
        self._ttl = ttl_s
        self._value: tuple[float, M] | None = None

    async def get(self) -> M:
        now = time.monotonic()
        if self._value is None or now - self._value[0] >= self._ttl:
            try:
                self._value = (now, await self._read())
            except Exception:
                if self._value is None:
                    raise
                self._value = (now, self._value[1])  # keep answering; retry after ttl
        return self._value[1]

    def set(self, value: M) -> None:
        self._value = (time.monotonic(), value)


class NextActionStore:
    def __init__(self, redis: Redis, decision_ttl_s: int, fingerprints: Fingerprints, *,
                 cache_s: float = 1.0, outcome_window_s: float = 7 * 86400) -> None:
        self._redis = redis
        self._ttl = decision_ttl_s
        self._fp = fingerprints
        self._window = outcome_window_s
        self._catalog = Cached(self._read_catalog, cache_s)
        self._policies = Cached(self._read_policies, cache_s)

    async def catalog(self) -> Catalog:
        return await self._catalog.get()

    async def policies(self) -> PolicyConfig:
        return await self._policies.get()

    async def _read_catalog(self) -> Catalog:
        raw = await self._redis.get(keys.offer_catalog())
        return Catalog(offers=[]) if raw is None else Catalog.model_validate_json(raw)

    async def _read_policies(self) -> PolicyConfig:
        raw = await self._redis.get(keys.decision_policies())
        return DEFAULT if raw is None else PolicyConfig.model_validate_json(raw)

    async def replace_catalog(self, catalog: Catalog) -> Catalog:
        stored = await self._replace(keys.offer_catalog(), catalog, Catalog)
        self._catalog.set(stored)
        return stored

    async def replace_policies(self, config: PolicyConfig) -> PolicyConfig:
        stored = await self._replace(keys.decision_policies(), config, PolicyConfig)
        self._policies.set(stored)
        return stored

    async def _replace(self, key: str, value: M, kind: type[M]) -> M:
        """Store ``value`` whole with the next version number."""
        while True:
            async with self._redis.pipeline(transaction=True) as pipe:
                try:
                    await pipe.watch(key)
                    raw = await pipe.get(key)
                    version = 0 if raw is None else kind.model_validate_json(raw).version
                    stored = value.model_copy(update={"version": version + 1})
                    pipe.multi()
                    pipe.set(key, stored.model_dump_json())
                    await pipe.execute()
                    return stored
                except WatchError:
                    continue

    async def keep(self, decision: Decision) -> None:
        """The decision, its id in the customer's index (which erasure deletes by), and
        each action's due time for an outcome (past it, it counts as ignored)."""
        index = keys.decisions_of(self._fp.profile(decision.customer_id))
        due = decision.decided_at.timestamp() + self._window
        async with self._redis.pipeline(transaction=True) as tx:
            tx.set(keys.decision(decision.decision_id), decision.model_dump_json(), ex=self._ttl)
            tx.sadd(index, decision.decision_id)
            tx.expire(index, self._ttl)
            if decision.actions:
                tx.zadd(keys.outcomes_due(), {f"{decision.decision_id}|{a.action_id}": due
                                              for a in decision.actions})
            await tx.execute()

    async def decision(self, decision_id: str) -> Decision | None:
        raw = await self._redis.get(keys.decision(decision_id))
        return None if raw is None else Decision.model_validate_json(raw)

    async def decisions(self, decision_ids: list[str]) -> list[Decision | None]:
        if not decision_ids:
            return []
        raws = await self._redis.mget([keys.decision(d) for d in decision_ids])
        return [None if r is None else Decision.model_validate_json(r) for r in raws]
