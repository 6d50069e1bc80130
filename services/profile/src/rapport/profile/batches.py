"""What both profile stages do with a micro-batch besides their own rules: skip what
Redis already reflects, pack steps per owning partition, wait for Kafka, and set a
poison record aside instead of stalling (or silently dropping) the rest of its batch."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from dataclasses import dataclass

import structlog
from aiokafka import AIOKafkaProducer
from aiokafka.errors import KafkaError, MessageSizeTooLargeError
from prometheus_client import Counter, Histogram
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import TimeoutError as RedisTimeoutError

from rapport.shared.deadletter import DeadLetters
from rapport.shared.events import ProfileStep, step_records
from rapport.shared.fencing import Fenced
from rapport.shared.layout import partition_of

from .store import BatchEffects, ProfileStore

log = structlog.get_logger(__name__)

PROCESSED = Counter("rapport_profile_records_total", "Records seen by the profile processors",
                    ["stage", "outcome"])
FRESHNESS = Histogram("rapport_profile_freshness_seconds",
                      "From ingest's receipt to a stage's effect being stored (resolve: "
                      "handed to stage 2; fold: the profile stored)", ["stage"],
                      buckets=(.005, .01, .025, .05, .1, .25, .5, 1, 2.5, 5, 10, 30))
TRANSIENT: tuple[type[BaseException], ...] = (
    RedisConnectionError, RedisTimeoutError, KafkaError, ConnectionError, TimeoutError)
"""Failures of the world, not of a record: the batch is retried, nothing is set aside."""


@dataclass(frozen=True)
class Record:
    topic: str
    partition: int
    offset: int
    value: bytes


class OffsetGuard:
    """Which records of a batch Redis already reflects (a redelivery after a crash)."""

    def __init__(self, store: ProfileStore, stage: str) -> None:
        self._store = store
        self._stage = stage
        self._applied: dict[tuple[str, int], int] = {}

    def forget(self) -> None:
        self._applied.clear()

    async def fresh(self, records: list[Record]) -> list[Record]:
        for key in {(r.topic, r.partition) for r in records} - self._applied.keys():
            self._applied[key] = await self._store.applied_offset(*key)
        fresh = [r for r in records if r.offset > self._applied[(r.topic, r.partition)]]
        if len(fresh) < len(records):
            PROCESSED.labels(self._stage, "redelivered").inc(len(records) - len(fresh))
        return fresh

    @staticmethod
    def offsets(records: list[Record]) -> dict[tuple[str, int], int]:
        out: dict[tuple[str, int], int] = {}
        for r in records:
            out[(r.topic, r.partition)] = max(r.offset, out.get((r.topic, r.partition), -1))
        return out

    def advance(self, offsets: dict[tuple[str, int], int]) -> None:
        self._applied.update(offsets)


class StepOutbox:
    """Steps bound for the re-keyed stream, packed per owning partition into few records."""

    def __init__(self, producer: AIOKafkaProducer, topic: str) -> None:
        self._producer = producer
        self._topic = topic
        self._partitions = 0
        self._steps: list[tuple[str, bytes]] = []

    def add(self, step: ProfileStep, touchpoint_json: bytes | None = None) -> None:
        self._steps.append((step.profile_id, step.to_bytes(touchpoint_json)))

    def add_encoded(self, profile_id: str, step_json: bytes) -> None:
        """A step already encoded (and sealed) for the partition owning ``profile_id``."""
        self._steps.append((profile_id, step_json))

    async def sends(self) -> list[Awaitable[object]]:
        """Send what was added (in order per partition); await the result to know it is sent."""
        if not self._steps:
            return []
        if not self._partitions:
            self._partitions = len(await self._producer.partitions_for(self._topic))
        by_partition: dict[int, list[bytes]] = {}
        for pid, encoded in self._steps:
            by_partition.setdefault(partition_of(pid, self._partitions), []).append(encoded)
        self._steps = []
        return [self._producer.send(self._topic, record, partition=partition)
                for partition, encoded in by_partition.items()
                for record in step_records(encoded)]


async def acked(sends: list[Awaitable[object]]) -> None:
    futures = [await s for s in sends]
    await asyncio.gather(*futures)


def reason_of(exc: BaseException) -> str:
    """A dead letter's reason: the kind of failure and its message, never a traceback."""
    return f"{type(exc).__name__}: {exc}"[:500]


class Quarantine:
    """Sets a record aside: its dead letter first, then its offset stored as applied,
    so a restart neither applies it nor sets it aside again."""

    def __init__(self, dead_letters: DeadLetters, store: ProfileStore, guard: OffsetGuard,
                 stage: str) -> None:
        self._letters = dead_letters
        self._store = store
        self._guard = guard
        self._stage = stage

    async def record(self, r: Record, reason: str, *, commit: bool = True) -> None:
        await self._letters.send(topic=r.topic, partition=r.partition, offset=r.offset,
                                 reason=reason, value=r.value)
        PROCESSED.labels(self._stage, "dead_lettered").inc()
        if commit:
            offsets = {(r.topic, r.partition): r.offset}
            await self._store.commit(BatchEffects(offsets=offsets,
                                                  resolved={(r.topic, r.partition): [r.offset]}))
            self._guard.advance(offsets)

    async def step(self, r: Record, step_json: bytes, reason: str) -> None:
        """One step of a packed record (the record's other steps are applied)."""
        await self._letters.send(topic=r.topic, partition=r.partition, offset=r.offset,
                                 reason=reason, value=step_json)
        PROCESSED.labels(self._stage, "dead_lettered").inc()


Attempt = Callable[[list[Record], bool], Awaitable[None]]


async def isolating(records: list[Record], attempt: Attempt, quarantine: Quarantine) -> None:
    """Apply a batch; if it fails for a reason of its own (not Redis or Kafka being
    away), apply its halves, in order, down to the record that fails alone, which is
    tried once more carefully (``attempt(records, True)``: step by step) and, failing
    that too, set aside whole."""
    try:
        await attempt(records, len(records) == 1)
        return
    except (*TRANSIENT, Fenced) as exc:
        if not isinstance(exc, MessageSizeTooLargeError):
            raise
        if len(records) == 1:  # a record's own output that cannot be sent: set aside
            await quarantine.record(records[0], reason_of(exc))
            return
    except Exception as exc:
        if len(records) == 1:
            log.error("record_failed", topic=records[0].topic, partition=records[0].partition,
                      offset=records[0].offset, reason=reason_of(exc)[:200])
            await quarantine.record(records[0], reason_of(exc))
            return
    mid = len(records) // 2
    await isolating(records[:mid], attempt, quarantine)
    await isolating(records[mid:], attempt, quarantine)


async def retrying(work: Callable[[], Awaitable[None]], what: str,
                   on_retry: Callable[[], None] = lambda: None) -> None:
    """Run ``work`` until it succeeds when Redis or Kafka fail under it: a stream
    batch is never given up (its offsets would be acknowledged without its effects)."""
    delay = 0.1
    while True:
        try:
            await work()
            return
        except TRANSIENT as exc:
            log.warning("batch_retry", stage=what, reason=type(exc).__name__, delay_s=delay)
            on_retry()
            await asyncio.sleep(delay)
            delay = min(delay * 2, 5.0)
