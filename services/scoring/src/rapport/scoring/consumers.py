"""Kafka side of scoring: keep the population sketches current from profile updates
(a customer's point moves; a tombstone retracts it). Scores themselves are not stored:
they are computed when asked. (Offer outcomes are next-action's to learn from, see
:mod:`rapport.next_action.learning`.)

Consumption is :mod:`rapport.shared.batching`'s loop. Delivery is at least once, and a
batch's offsets are committed only once each of its
records is applied or dead-lettered. A partition's population change is applied once
(its offset is stored with it, see :mod:`.population`). A failure of Redis or Kafka is
the store's, not the record's: it is retried with backoff, holding the batch (nothing
skipped or committed). Any other failure is the record's own: it goes to the stream
dead-letter topic with the reason and the batch goes on, so one poison record can
neither stop scoring nor kill it again on every restart.

A stop lets the batch in hand finish and commits what was done, so a restart repeats
nothing. A crash repeats the uncommitted rest of a batch: population changes are
recognised by their stored offset, and the records dead-lettered in that part are
dead-lettered again, once per crash.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from datetime import UTC, datetime
from typing import Any, TypeVar

import structlog
from aiokafka import AIOKafkaConsumer, ConsumerRecord
from aiokafka.errors import (
    MessageSizeTooLargeError,
)
from prometheus_client import Counter
from tenacity import AsyncRetrying, RetryCallState, retry_if_exception, wait_exponential
from tenacity.wait import wait_base

from rapport.shared import topics
from rapport.shared.batching import BatchLoop, by_partition
from rapport.shared.customers import CustomerReadModel
from rapport.shared.deadletter import DeadLetters
from rapport.shared.failures import transient
from rapport.shared.profiles import CustomerProfile
from rapport.shared.scores import compute
from rapport.shared.scores.model import ClvModel
from rapport.shared.scores.population import ListPopulation

from .population import Change, PopulationStore
from .store import ScoringStore

log = structlog.get_logger(__name__)
CONSUMED = Counter("rapport_scoring_records_total", "Records consumed by scoring",
                   ["topic", "outcome"])
RETRIED = Counter("rapport_scoring_retries_total",
                  "Retries of a Redis or Kafka call that failed transiently", ["call"])
T = TypeVar("T")

_NOBODY = ListPopulation({})


def change_of(record: ConsumerRecord, model: ClvModel, policy: compute.ScoringPolicy,
              now: datetime, erased_ms: int | None) -> Change:
    """What one profile-updates record does to the population: the customer's new
    point, or a retraction (tombstone; a person erased at or after this version)."""
    if record.value is None:  # tombstone: the profile was erased or merged away
        if record.key is None:
            raise ValueError("tombstone without a key: no profile to forget")
        return Change(record.offset, record.key.decode(), None)
    profile = CustomerProfile.from_bytes(record.value)
    version = None if profile.updated_at is None else int(profile.updated_at.timestamp() * 1000)
    if erased_ms is not None and (version is None or version <= erased_ms):
        return Change(record.offset, profile.customer_id, None)
    scores = compute.score(profile, now, model, _NOBODY, policy)
    return Change(record.offset, profile.customer_id, compute.point(profile, scores))


class ScoringConsumer:
    def __init__(self, consumer: AIOKafkaConsumer, store: ScoringStore,
                 reader: CustomerReadModel, population: PopulationStore,
                 dead_letters: DeadLetters, *, retry_wait: wait_base | None = None) -> None:
        self._store = store
        self._reader = reader
        self._population = population
        self._dead_letters = dead_letters
        self._wait = retry_wait or wait_exponential(multiplier=0.1, max=10)
        self._loop = BatchLoop(consumer, {topics.PROFILE_UPDATES.name: self._on_batch},
                               group="scoring", max_records=500, poll_ms=500)

    async def on_profiles(self, partition: int, records: list[ConsumerRecord]) -> None:
        """A partition's profile updates: their points move in one step."""
        model = await self._retry("model", self._reader.model)
        erased = await self._retry("erased", self._erased, records)
        now = datetime.now(UTC)
        changes: list[Change] = []
        for record in records:
            try:
                changes.append(change_of(record, model, self._reader.policy, now,
                                         erased.get(record.key)))
            except Exception as exc:  # the record's own fault: set aside, go on
                await self._dead_letter(record, f"{type(exc).__name__}: {exc}")
                CONSUMED.labels(record.topic, "dead_lettered").inc()
        applied = await self._retry("population", self._population.apply, partition, changes)
        CONSUMED.labels(topics.PROFILE_UPDATES.name, "ok").inc(applied)
        CONSUMED.labels(topics.PROFILE_UPDATES.name, "duplicate").inc(len(changes) - applied)

    async def _erased(self, records: list[ConsumerRecord]) -> dict[bytes, int]:
        """When each record's person was erased (ms), for those who were."""
        ids = sorted({r.key for r in records if r.key is not None and r.value is not None})
        if not ids:
            return {}
        marks = await self._store.erased_markers([i.decode() for i in ids])
        return {i: m for i, m in zip(ids, marks, strict=True) if m is not None}

    def stop(self) -> None:
        """Ask :meth:`run` to return after the batch in hand, committing what is done."""
        self._loop.stop()

    async def run(self) -> None:
        await self._loop.run()

    async def _on_batch(self, records: list[ConsumerRecord]) -> None:
        for partition, mine in by_partition(records).items():
            await self.on_profiles(partition, mine)

    async def _dead_letter(self, record: ConsumerRecord, reason: str) -> None:
        async def send(value: bytes | None, why: str) -> None:
            await self._dead_letters.send(topic=record.topic, partition=record.partition,
                                          offset=record.offset, reason=why, value=value)
        try:
            await self._retry("dead_letter", send, record.value, reason)
        except MessageSizeTooLargeError:
            await self._retry("dead_letter", send, None, f"{reason} (record too large to keep)")

    async def _retry(self, call: str, fn: Callable[..., Awaitable[T]], *args: Any,
                     **kwargs: Any) -> T:
        """``fn``'s result, retrying transient failures with backoff for as long as they
        last (the batch waits); any other exception is raised at once."""
        def before_sleep(state: RetryCallState) -> None:
            RETRIED.labels(call).inc()
            error = state.outcome.exception() if state.outcome else None
            log.warning("scoring_retry", call=call, attempt=state.attempt_number,
                        error=repr(error))

        retrying = AsyncRetrying(retry=retry_if_exception(transient), wait=self._wait,
                                 before_sleep=before_sleep, reraise=True)
        return await retrying(fn, *args, **kwargs)


def make_consumer(bootstrap: str, group_id: str) -> AIOKafkaConsumer:
    return AIOKafkaConsumer(
        topics.PROFILE_UPDATES.name,
        bootstrap_servers=bootstrap, group_id=group_id, client_id="rapport-scoring",
        enable_auto_commit=False, auto_offset_reset="earliest",
    )
