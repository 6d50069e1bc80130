"""Redis adapter for profiles, identity index, timelines and applied offsets.

Each write of a profile goes in one MULTI/EXEC with the Kafka offset it
reflects, so a redelivered touchpoint is recognised and never counted twice.
"""

from __future__ import annotations

from collections.abc import Iterable

import orjson
from redis.asyncio import Redis

from rapport.shared import keys
from rapport.shared.events import Touchpoint
from rapport.shared.profiles import CustomerProfile, Identity


def timeline_key(customer_id: str) -> str:
    return f"{keys.profile(customer_id)}:timeline"


def timeline_entry(tp: Touchpoint) -> bytes:
    """What an agent sees of one touchpoint: no raw context, only what it was."""
    return orjson.dumps({
        "message_id": tp.message_id, "type": tp.type.value, "event": tp.event, "name": tp.name,
        "channel": tp.channel.value, "timestamp": tp.timestamp.isoformat(),
        "properties": tp.properties,
    })


class ProfileStore:
    def __init__(self, redis: Redis, *, group: str, timeline_length: int = 100) -> None:
        self._redis = redis
        self._group = group
        self._timeline_length = timeline_length

    async def load(self, customer_id: str) -> CustomerProfile | None:
        raw = await self._redis.get(keys.profile(customer_id))
        return None if raw is None else CustomerProfile.from_bytes(raw)

    async def resolve(self, kind: str, value: str) -> str | None:
        """The customer id an identifier belongs to, if any."""
        raw = await self._redis.get(keys.identity(kind, value))
        return None if raw is None else raw.decode()

    async def timeline(self, customer_id: str, limit: int) -> list[dict[str, object]]:
        rows = await self._redis.lrange(timeline_key(customer_id), 0, limit - 1)
        return [orjson.loads(r) for r in rows]

    async def applied_offset(self, topic: str, partition: int) -> int:
        raw = await self._redis.get(keys.applied_offset(self._group, topic, partition))
        return -1 if raw is None else int(raw)

    async def load_many(self, customer_ids: list[str]) -> list[CustomerProfile | None]:
        if not customer_ids:
            return []
        raws = await self._redis.mget([keys.profile(c) for c in customer_ids])
        return [None if r is None else CustomerProfile.from_bytes(r) for r in raws]

    async def commit_batch(self, profiles: Iterable[CustomerProfile],
                           new_identities: dict[str, list[Identity]],
                           touchpoints: Iterable[Touchpoint],
                           offsets: dict[tuple[str, int], int]) -> None:
        """Store a micro-batch's effects and the offsets they reflect, atomically."""
        async with self._redis.pipeline(transaction=True) as tx:
            for profile in profiles:
                tx.set(keys.profile(profile.customer_id), profile.to_bytes())
                for ident in new_identities.get(profile.customer_id, ()):
                    tx.set(keys.identity(ident.type, ident.value), profile.customer_id)
            timelines: set[str] = set()
            for tp in touchpoints:
                tl = timeline_key(tp.customer_key)
                tx.lpush(tl, timeline_entry(tp))
                timelines.add(tl)
            for tl in timelines:
                tx.ltrim(tl, 0, self._timeline_length - 1)
            for (topic, partition), offset in offsets.items():
                tx.set(keys.applied_offset(self._group, topic, partition), offset)
            await tx.execute()
