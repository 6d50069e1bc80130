"""Redis adapter for profiles, timelines, segment membership and applied offsets.

A micro-batch's effects go in one MULTI/EXEC with the Kafka offsets they
reflect, so a redelivered record is recognised and never counted twice. A stage-2
batch holds one partition, whose keys share one slot (:mod:`rapport.shared.layout`);
stage 1's offsets live with the identity graph, in ``{ids}``.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass, field

import orjson
from redis.asyncio import Redis
from redis.exceptions import WatchError

from rapport.shared import keys
from rapport.shared.events import Touchpoint
from rapport.shared.fencing import Fence
from rapport.shared.layout import ProfileLayout
from rapport.shared.profiles import CustomerProfile
from rapport.shared.redis_store import get_many

from .limits import MAX_TIMELINE_ENTRY_BYTES


def timeline_entry(tp: Touchpoint) -> tuple[float, str]:
    """(event time, JSON) of what an agent sees of one touchpoint: no raw context, and
    within 2 KiB (large property values are left out and the entry says so)."""
    entry = {"message_id": tp.message_id, "type": tp.type.value, "event": tp.event,
             "name": tp.name, "channel": tp.channel.value,
             "timestamp": tp.timestamp.isoformat(), "properties": tp.properties}
    try:
        encoded = orjson.dumps(entry)
    except (TypeError, orjson.JSONEncodeError):
        encoded = b""
    if not encoded or len(encoded) > MAX_TIMELINE_ENTRY_BYTES:
        small = {k: v for k, v in tp.properties.items()
                 if isinstance(v, str | int | float | bool) and len(str(v)) <= 64}
        entry["properties"], entry["truncated"] = dict(list(small.items())[:16]), True
        encoded = orjson.dumps(entry, default=str)
    return tp.timestamp.timestamp(), encoded.decode(errors="replace")


@dataclass
class BatchEffects:
    profiles: dict[str, CustomerProfile] = field(default_factory=dict)
    encoded: dict[str, bytes] = field(default_factory=dict)
    """Stored form of the profiles, already encoded (and checked) by the fold."""
    handed_over: dict[str, str] = field(default_factory=dict)
    """Profiles merged away in this batch -> the profile they were handed to."""
    timelines: dict[str, list[tuple[float, str]]] = field(default_factory=dict)
    joined: dict[str, set[str]] = field(default_factory=dict)
    left: dict[str, set[str]] = field(default_factory=dict)
    offsets: dict[tuple[str, int], int] = field(default_factory=dict)
    resolved: dict[tuple[str, int], list[int]] = field(default_factory=dict)
    """Offsets whose logged resolutions this batch's commit makes unnecessary."""


def offset_slots(layout: ProfileLayout, resolved_topic: str) -> Callable[[str, int], str]:
    """Where a partition's offsets (and owner epoch) live: with its profiles (the re-keyed
    stream's partitions) or with the identity graph (stage 1's, which it writes)."""
    def slot_of(topic: str, partition: int) -> str:
        return layout.partition_slot(partition) if topic == resolved_topic else keys.IDS
    return slot_of


class ProfileStore:
    def __init__(self, redis: Redis, *, group: str, layout: ProfileLayout,
                 resolved_topic: str, timeline_length: int = 100,
                 fence: Fence | None = None) -> None:
        self._redis = redis
        self._group = group
        self.layout = layout
        self.slot_of = offset_slots(layout, resolved_topic)
        self._timeline_length = timeline_length
        self._fence = fence

    async def load(self, customer_id: str) -> CustomerProfile | None:
        raw = await self._redis.get(self.layout.profile(customer_id))
        return None if raw is None else CustomerProfile.from_bytes(raw)

    async def load_many(self, customer_ids: list[str]) -> list[CustomerProfile | None]:
        if not customer_ids:
            return []
        raws = await get_many(self._redis, [self.layout.profile(c) for c in customer_ids])
        return [None if r is None else CustomerProfile.from_bytes(r) for r in raws]

    async def resolve(self, kind: str, value: str) -> str | None:
        """The profile id an identifier belongs to, if any."""
        raw = await self._redis.get(keys.identity(kind, value))
        return None if raw is None else raw.decode()

    async def timeline(self, customer_id: str, limit: int) -> list[dict[str, object]]:
        rows = await self._redis.zrevrange(self.layout.timeline(customer_id), 0, limit - 1)
        return [orjson.loads(r) for r in rows]

    async def timeline_entries(self, customer_id: str) -> list[tuple[float, str]]:
        rows = await self._redis.zrange(self.layout.timeline(customer_id), 0, -1,
                                        withscores=True)
        return [(score, member.decode()) for member, score in rows]

    async def segment_counts(self, names: Iterable[str]) -> dict[str, int]:
        """Members per segment: the sum over the partitions' sets."""
        names = list(names)
        async with self._redis.pipeline(transaction=False) as pipe:
            for name in names:
                for key in self.layout.segment_keys(name):
                    pipe.scard(key)
            counts = await pipe.execute()
        per = self.layout.partitions
        return {name: sum(counts[i * per:(i + 1) * per]) for i, name in enumerate(names)}

    async def handed_over(self, profile_ids: list[str]) -> dict[str, str]:
        """Which of these profiles were merged away, and to which."""
        if not profile_ids:
            return {}
        raws = await get_many(self._redis, [self.layout.handed_over(p) for p in profile_ids])
        return {p: r.decode() for p, r in zip(profile_ids, raws, strict=True) if r is not None}

    @property
    def group(self) -> str:
        return self._group

    async def applied_offset(self, topic: str, partition: int) -> int:
        raw = await self._redis.get(keys.applied_offset(
            self._group, topic, partition, self.slot_of(topic, partition)))
        return -1 if raw is None else int(raw)

    async def commit(self, fx: BatchEffects) -> None:
        """Store a micro-batch's effects and the offsets they reflect, atomically, and
        only while this worker still owns their partitions (:class:`Fence`)."""
        while True:
            try:
                await self._commit(fx)
                return
            except WatchError:  # a new owner took a partition meanwhile: check again
                continue

    async def _commit(self, fx: BatchEffects) -> None:
        async with self._redis.pipeline(transaction=True) as tx:
            if self._fence is not None:
                await self._fence.check(tx, fx.offsets)
                tx.multi()
            layout = self.layout
            for pid, profile in fx.profiles.items():
                tx.set(layout.profile(pid), fx.encoded.get(pid) or profile.to_stored())
            for pid, into in fx.handed_over.items():
                tx.delete(layout.profile(pid), layout.timeline(pid))
                tx.set(layout.handed_over(pid), into)
            for pid, entries in fx.timelines.items():
                if pid in fx.handed_over or not entries:
                    continue
                key = layout.timeline(pid)
                tx.zadd(key, {member: score for score, member in entries})
                tx.zremrangebyrank(key, 0, -self._timeline_length - 1)
            for segment, members in fx.joined.items():
                for slot, part in _by_slot(layout, members).items():
                    tx.sadd(keys.segment_members(slot, segment), *part)
            for segment, members in fx.left.items():
                for slot, part in _by_slot(layout, members).items():
                    tx.srem(keys.segment_members(slot, segment), *part)
            for (topic, partition), offset in fx.offsets.items():
                tx.set(keys.applied_offset(self._group, topic, partition,
                                           self.slot_of(topic, partition)), offset)
            for (topic, partition), done in fx.resolved.items():
                if done:
                    tx.hdel(keys.resolve_log(self._group, topic, partition), *map(str, done))
            await tx.execute()


def _by_slot(layout: ProfileLayout, members: Iterable[str]) -> dict[str, list[str]]:
    out: dict[str, list[str]] = {}
    for pid in members:
        out.setdefault(layout.slot(pid), []).append(pid)
    return out
