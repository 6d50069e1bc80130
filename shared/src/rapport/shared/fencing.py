"""Fencing a partition's former owner: a worker that lost its partitions (a long GC
pause, a network stall, a rebalance it missed) must not store a batch afterwards.

Each owner takes a new epoch per partition when the group assigns it (an ``INCR``),
and every store of a batch WATCHes the epochs of the partitions it reflects and writes
only if they are still its own, in the same transaction as the effects and offsets:
a newer owner's ``INCR`` between the check and the write aborts it (``WatchError``),
and the check then refuses it (:class:`Fenced`).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable

from aiokafka import TopicPartition
from prometheus_client import Counter
from redis.asyncio import Redis
from redis.asyncio.client import Pipeline

from . import keys

FENCED = Counter("rapport_fenced_batches_total",
                 "Batches refused because their partition has a newer owner", ["group"])


class Fenced(Exception):
    """The batch was not stored: one of its partitions has a newer owner."""


class Fence:
    def __init__(self, redis: Redis, group: str,
                 slot_of: Callable[[str, int], str]) -> None:
        """``slot_of(topic, partition)``: the hash tag of the partition's offsets (its
        epoch lives beside them, in the slot its batches write)."""
        self._redis = redis
        self._group = group
        self._slot_of = slot_of
        self._epochs: dict[tuple[str, int], int] = {}

    def _key(self, topic: str, partition: int) -> str:
        return keys.owner_epoch(self._group, topic, partition, self._slot_of(topic, partition))

    async def acquire(self, partitions: Iterable[TopicPartition]) -> None:
        """Become the newest owner of ``partitions`` (on assignment)."""
        parts = sorted((tp.topic, tp.partition) for tp in partitions)
        if not parts:
            return
        async with self._redis.pipeline(transaction=False) as pipe:
            for topic, partition in parts:
                pipe.incr(self._key(topic, partition))
            epochs = await pipe.execute()
        self._epochs.update(zip(parts, (int(e) for e in epochs), strict=True))

    def release(self, partitions: Iterable[TopicPartition]) -> None:
        for tp in partitions:
            self._epochs.pop((tp.topic, tp.partition), None)

    async def check(self, tx: Pipeline, partitions: Iterable[tuple[str, int]]) -> None:
        """On a pipeline in immediate mode (before ``multi()``): WATCH the epochs of
        ``partitions`` and raise :class:`Fenced` unless they are all still ours."""
        parts = sorted(set(partitions))
        if not parts:
            return
        names = [self._key(t, p) for t, p in parts]
        await tx.watch(*names)
        stored = await tx.execute_command("MGET", *names)  # (a cluster pipeline refuses mget)
        for part, raw in zip(parts, stored, strict=True):
            mine = self._epochs.get(part)
            if mine is None or raw is None or int(raw) != mine:
                FENCED.labels(self._group).inc()
                raise Fenced(f"{part[0]}[{part[1]}]: owner epoch {mine}, now "
                             f"{None if raw is None else int(raw)}")
