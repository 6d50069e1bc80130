"""Redis adapter: the catalog, decisions and the learnt propensities (customers are
read through :class:`rapport.shared.customers.CustomerReadModel`)."""

from __future__ import annotations

from collections.abc import Iterable

from redis.asyncio import Redis

from rapport.shared import keys
from rapport.shared.privacy import Fingerprints

from .catalog import Catalog
from .domain import Decision


class NextActionStore:
    def __init__(self, redis: Redis, decision_ttl_s: int, fingerprints: Fingerprints) -> None:
        self._redis = redis
        self._ttl = decision_ttl_s
        self._fp = fingerprints

    async def catalog(self) -> Catalog:
        raw = await self._redis.get(keys.offer_catalog())
        return Catalog(offers=[]) if raw is None else Catalog.model_validate_json(raw)

    async def replace_catalog(self, catalog: Catalog) -> None:
        await self._redis.set(keys.offer_catalog(), catalog.model_dump_json())

    async def propensities(self, offer_ids: Iterable[str]) -> dict[str, float]:
        ids = list(offer_ids)
        async with self._redis.pipeline(transaction=False) as pipe:
            for offer_id in ids:
                pipe.hget(keys.offer_stats(offer_id), "propensity")
            values = await pipe.execute()
        return {o: float(v) for o, v in zip(ids, values, strict=True) if v is not None}

    async def save_decision(self, decision: Decision) -> None:
        """The decision, and its id in the customer's index, which erasure deletes by."""
        index = keys.decisions_of(self._fp.profile(decision.customer_id))
        async with self._redis.pipeline(transaction=True) as tx:
            tx.set(keys.decision(decision.decision_id), decision.model_dump_json(), ex=self._ttl)
            tx.sadd(index, decision.decision_id)
            tx.expire(index, self._ttl)
            await tx.execute()

    async def decision(self, decision_id: str) -> Decision | None:
        raw = await self._redis.get(keys.decision(decision_id))
        return None if raw is None else Decision.model_validate_json(raw)
