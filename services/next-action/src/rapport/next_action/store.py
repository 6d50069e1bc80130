"""Redis adapter: the catalog and the policies (versioned, replaced whole, cached for a
moment), decisions and their due outcomes (customers are read through
:class:`rapport.shared.customers.CustomerReadModel`)."""

from __future__ import annotations

import asyncio
import time
import zlib
from collections.abc import Awaitable, Callable
from typing import Generic, TypeVar

from pydantic import BaseModel
from redis.asyncio import Redis
from redis.exceptions import WatchError

from rapport.shared import keys
from rapport.shared.privacy import Fingerprints
from rapport.shared.redis_store import get_many

from .catalog import Catalog
from .domain import Decision
from .policies import DEFAULT, PolicyConfig

M = TypeVar("M", bound=BaseModel)


class Cached(Generic[M]):
    """The last value read, reused for ``ttl_s``; then read again by one caller while
    the others keep the last one, and parsed again only when its bytes changed. The
    last good value is kept while Redis fails."""

    def __init__(self, read: Callable[[], Awaitable[bytes | None]],
                 parse: Callable[[bytes | None], M], ttl_s: float) -> None:
        self._read = read
        self._parse = parse
        self._ttl = ttl_s
        self._value: tuple[float, bytes | None, M] | None = None
        self._lock = asyncio.Lock()

    async def get(self) -> M:
        value = self._value
        if value is not None and time.monotonic() - value[0] < self._ttl:
            return value[2]
        if value is not None and self._lock.locked():
            return value[2]  # someone is reading it already
        async with self._lock:
            value = self._value
            if value is not None and time.monotonic() - value[0] < self._ttl:
                return value[2]
            try:
                raw = await self._read()
            except Exception:
                if value is None:
                    raise
                self._value = (time.monotonic(), value[1], value[2])
                return value[2]
            parsed = value[2] if value is not None and raw == value[1] else self._parse(raw)
            self._value = (time.monotonic(), raw, parsed)
            return parsed

    def set(self, value: M) -> None:
        self._value = (time.monotonic(), None, value)


def _catalog(raw: bytes | None) -> Catalog:
    return Catalog(offers=[]) if raw is None else Catalog.model_validate_json(raw)


def _policies(raw: bytes | None) -> PolicyConfig:
    return DEFAULT if raw is None else PolicyConfig.model_validate_json(raw)


class NextActionStore:
    def __init__(self, redis: Redis, decision_ttl_s: int, fingerprints: Fingerprints, *,
                 cache_s: float = 1.0, outcome_window_s: float = 7 * 86400) -> None:
        self._redis = redis
        self._ttl = decision_ttl_s
        self._fp = fingerprints
        self._window = outcome_window_s
        self._catalog = Cached(lambda: redis.get(keys.offer_catalog()), _catalog, cache_s)
        self._policies = Cached(lambda: redis.get(keys.decision_policies()), _policies,
                                cache_s)

    async def catalog(self) -> Catalog:
        return await self._catalog.get()

    async def policies(self) -> PolicyConfig:
        return await self._policies.get()

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
        # Three slots on a cluster, in this order: the index first (erasure finds the
        # decision as soon as it exists), the due times last (an outcome is only ever
        # awaited for a decision that is stored).
        async with self._redis.pipeline(transaction=False) as pipe:
            pipe.sadd(index, decision.decision_id)
            pipe.expire(index, self._ttl)
            pipe.set(keys.decision(decision.decision_id), _packed(decision), ex=self._ttl)
            if decision.actions:
                pipe.zadd(keys.outcomes_due(), {f"{decision.decision_id}|{a.action_id}": due
                                                for a in decision.actions})
            await pipe.execute()

    async def decision(self, decision_id: str) -> Decision | None:
        raw = await self._redis.get(keys.decision(decision_id))
        return None if raw is None else _unpacked(raw)

    async def decisions(self, decision_ids: list[str]) -> list[Decision | None]:
        if not decision_ids:
            return []
        raws = await get_many(self._redis, [keys.decision(d) for d in decision_ids])
        return [None if r is None else _unpacked(r) for r in raws]


def _packed(decision: Decision) -> bytes:
    """Deflated JSON without defaults: a 200-offer trace is ~68 KB plain, ~7 KB packed
    (most of it the same few reasons), and fewer bytes to send costs less CPU too."""
    return zlib.compress(decision.model_dump_json(exclude_defaults=True).encode(), 1)


def _unpacked(raw: bytes) -> Decision:
    return Decision.model_validate_json(raw if raw[:1] == b"{" else zlib.decompress(raw))
