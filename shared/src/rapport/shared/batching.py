"""Micro-batch consumption of Kafka for every Rapport consumer: aiokafka ``getmany``,
one handler per topic, offsets committed only after a batch's effects are stored, and
partition ownership handed over cleanly on a rebalance.

Why not a framework's per-record agent: at tens of thousands of events per second the
per-record cost dominates (a count-only faust agent tops out near 6,600 records/s on
two cores); ``getmany`` hands a handler hundreds of records for one await.

The contract with a handler:

- ``handle(records)`` gets one topic's records of one poll, in offset order within each
  partition (partitions one after the other). It returns once their effects are stored,
  with the offsets they reflect (the stores keep them, so a redelivery is recognised);
  it waits out Redis or Kafka being away itself. What it raises stops the loop.
- Kafka's committed offset follows the stored effects (a hint for restarts and the lag,
  never ahead of what is stored).
- ``on_assigned`` / ``on_revoked`` run between batches: a revocation waits for the
  batch in hand, so a partition is never processed by its old owner after its new
  owner started (the fencing epoch, :class:`Fence`, covers an owner that stalled past
  its session).
- ``stop()`` ends :meth:`BatchLoop.run` after the batch in hand; :func:`shutdown` bounds
  it in time.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Iterable, Mapping
from typing import Any, Protocol

import structlog
from aiokafka import AIOKafkaConsumer, ConsumerRebalanceListener, ConsumerRecord, TopicPartition
from aiokafka.errors import CommitFailedError, IllegalStateError, KafkaError
from prometheus_client import Counter, Histogram
from tenacity import AsyncRetrying, retry_if_exception, stop_after_delay, wait_exponential

from . import stopping
from .failures import transient
from .fencing import Fenced

log = structlog.get_logger(__name__)
BATCHES = Histogram("rapport_batch_records", "Records per handled batch", ["group", "topic"],
                    buckets=(1, 10, 50, 100, 250, 500, 1000, 2000, 5000))
REBALANCES = Counter("rapport_batch_rebalances_total", "Partitions assigned or revoked",
                     ["group", "change"])

Handler = Callable[[list[ConsumerRecord]], Awaitable[None]]
Ownership = Callable[[set[TopicPartition]], Awaitable[None]]


async def _nothing(_: set[TopicPartition]) -> None:
    return None


class Consumer(Protocol):
    """What the loop needs of :class:`aiokafka.AIOKafkaConsumer`."""

    def subscribe(self, topics: Iterable[str], *, listener: ConsumerRebalanceListener
                  ) -> None: ...
    async def getmany(self, *partitions: TopicPartition, timeout_ms: int = 0,
                      max_records: int | None = None
                      ) -> dict[TopicPartition, list[ConsumerRecord]]: ...
    async def commit(self, offsets: Mapping[TopicPartition, int] | None = None) -> None: ...
    def assignment(self) -> set[TopicPartition]: ...
    async def topics(self) -> set[str]: ...


def make_consumer(bootstrap: str, group_id: str, *, client_id: str,
                  session_timeout_s: float = 30.0, max_fetch_bytes: int = 16 * 1024 * 1024,
                  ) -> AIOKafkaConsumer:
    """A consumer for :class:`BatchLoop`: manual commits, from the earliest offset."""
    session_ms = int(session_timeout_s * 1000)
    return AIOKafkaConsumer(
        bootstrap_servers=bootstrap, group_id=group_id, client_id=client_id,
        enable_auto_commit=False, auto_offset_reset="earliest",
        session_timeout_ms=session_ms, heartbeat_interval_ms=max(100, min(3000,
                                                                          session_ms // 3)),
        rebalance_timeout_ms=max(session_ms, 30_000), fetch_max_bytes=max_fetch_bytes,
        # A topic created just before (or partitions added) is seen within seconds,
        # not aiokafka's default five minutes: its partitions are then assigned.
        metadata_max_age_ms=5000,
        max_partition_fetch_bytes=max_fetch_bytes // 4)


def by_partition(records: list[ConsumerRecord]) -> dict[int, list[ConsumerRecord]]:
    out: dict[int, list[ConsumerRecord]] = {}
    for r in records:
        out.setdefault(r.partition, []).append(r)
    return out


class BatchLoop(ConsumerRebalanceListener):  # type: ignore[misc]
    """Polls ``consumer`` for the topics of ``handlers`` and hands each topic's records
    to its handler; different topics' batches are handled concurrently (or one after
    the other, in topic order, when ``sequential``)."""

    def __init__(self, consumer: Consumer, handlers: Mapping[str, Handler], *, group: str,
                 on_assigned: Ownership = _nothing, on_revoked: Ownership = _nothing,
                 max_records: int = 2000, poll_ms: int = 20, sequential: bool = False,
                 commit_retry_s: float = 10.0) -> None:
        self._consumer = consumer
        self._handlers = dict(handlers)
        self._group = group
        self._assigned = on_assigned
        self._revoked = on_revoked
        self._max = max_records
        self._poll_ms = poll_ms
        self._sequential = sequential
        self._commit_s = commit_retry_s
        self._commits = True
        self._stopping = asyncio.Event()
        self._busy = asyncio.Lock()
        self.joined = asyncio.Event()
        """Set once the group gave this consumer its share (possibly none)."""

    def subscribe(self) -> None:
        self._consumer.subscribe(sorted(self._handlers), listener=self)

    async def replay(self, partitions: list[TopicPartition]) -> None:
        """Read ``partitions`` from their start outside any group, for state rebuilt in
        memory from a topic on every start: assigned, not subscribed, never committed."""
        self._commits = False
        self._consumer.assign(partitions)  # type: ignore[attr-defined]
        await self._consumer.seek_to_beginning(*partitions)  # type: ignore[attr-defined]
        self.joined.set()

    async def subscribe_when_visible(self, timeout_s: float) -> None:
        """Subscribe once the broker's metadata shows every topic (bounded): a topic
        missing from the first assignment is only picked up by a later rebalance,
        while the others' records are worked without it."""
        deadline = asyncio.get_running_loop().time() + timeout_s
        while asyncio.get_running_loop().time() < deadline:
            try:
                if set(self._handlers) <= await self._consumer.topics():
                    break
            except KafkaError:
                pass
            await asyncio.sleep(0.2)
        else:
            log.warning("topics_not_visible_yet", group=self._group, after_s=timeout_s)
        self.subscribe()

    async def on_partitions_revoked(self, revoked: set[TopicPartition]) -> None:
        async with self._busy:  # the batch in hand finishes first (its commit is then
            # refused or left out: the partition is no longer assigned)
            REBALANCES.labels(self._group, "revoked").inc(len(revoked))
            await self._revoked(set(revoked))

    async def on_partitions_assigned(self, assigned: set[TopicPartition]) -> None:
        async with self._busy:
            REBALANCES.labels(self._group, "assigned").inc(len(assigned))
            await self._assigned(set(assigned))
        self.joined.set()

    async def until_joined(self, timeout_s: float) -> bool:
        """Wait (bounded) for the first assignment: a service that starts consuming
        only after answering ready would let its first records pile up unseen."""
        try:
            await asyncio.wait_for(self.joined.wait(), timeout_s)
        except TimeoutError:
            log.warning("group_not_joined_yet", group=self._group, after_s=timeout_s)
        return self.joined.is_set()

    def stop(self) -> None:
        """:meth:`run` returns after the batch in hand (committed)."""
        self._stopping.set()

    async def run(self) -> None:
        while not self._stopping.is_set():
            try:
                polled = await self._consumer.getmany(timeout_ms=self._poll_ms,
                                                      max_records=self._max)
            except KafkaError as exc:  # the broker away: poll again
                log.warning("poll_failed", group=self._group, error=type(exc).__name__)
                await asyncio.sleep(0.5)
                continue
            if polled:
                await self.handle(polled)

    async def handle(self, polled: Mapping[TopicPartition, list[ConsumerRecord]]) -> None:
        """One poll's records: each topic's to its handler, then the offsets committed
        (outside the ownership lock: a commit racing a rebalance is refused, harmlessly)."""
        by_topic: dict[str, list[ConsumerRecord]] = {}
        for tp in sorted(polled, key=lambda t: (t.topic, t.partition)):
            by_topic.setdefault(tp.topic, []).extend(polled[tp])
        topics = [topic for topic, records in by_topic.items() if records]  # sorted
        async with self._busy:
            if self._sequential:  # in topic order, e.g. decisions before their outcomes
                stored = [await self._handled(t, by_topic[t]) for t in topics]
            else:
                stored = await asyncio.gather(*(self._handled(t, by_topic[t])
                                                for t in topics))
        kept = {t for t, ok in zip(topics, stored, strict=True) if ok}
        await self._commit({tp: records[-1].offset + 1 for tp, records in polled.items()
                            if records and tp.topic in kept})

    async def _handled(self, topic: str, records: list[ConsumerRecord]) -> bool:
        """Whether the records' effects were stored (not when the batch was fenced:
        its partitions have a newer owner, whose offsets are the ones to keep)."""
        BATCHES.labels(self._group, topic).observe(len(records))
        try:
            await self._handlers[topic](records)
        except Fenced as exc:
            log.warning("batch_fenced", group=self._group, topic=topic, reason=str(exc))
            return False
        return True

    async def _commit(self, done: dict[TopicPartition, int]) -> None:
        # A partition a rebalance took is its new owner's to commit.
        mine = {tp: offset for tp, offset in done.items() if tp in self._consumer.assignment()}
        if not mine or not self._commits:
            return
        try:
            async for attempt in AsyncRetrying(
                    retry=retry_if_exception(transient), wait=wait_exponential(0.1, max=2),
                    stop=stop_after_delay(self._commit_s), reraise=True):
                with attempt:
                    await self._consumer.commit(mine)
        except (CommitFailedError, IllegalStateError, KafkaError) as exc:
            # Only a hint: the effects and their offsets are stored already, so a
            # redelivery is recognised.
            log.warning("commit_skipped", group=self._group, error=type(exc).__name__)


class Stoppable(Protocol):
    def stop(self) -> None: ...


async def shutdown(loop: Stoppable, task: asyncio.Task[Any], grace_s: float = 10.0) -> None:
    """Stop cleanly (the batch in hand finishes and is committed); cancel after
    ``grace_s`` (e.g. while Redis is down), leaving the batch to be redelivered."""
    loop.stop()
    if task.done():
        if not task.cancelled() and task.exception() is not None:
            log.error("batch_loop_failed", error=repr(task.exception()))
        return
    done, _ = await asyncio.wait({task}, timeout=grace_s)
    if not done:
        log.warning("batch_loop_cancelled", grace_s=grace_s)
        await stopping.cancel(task, "batch loop", grace_s)
    elif not task.cancelled() and task.exception() is not None:
        log.error("batch_loop_failed", error=repr(task.exception()))
