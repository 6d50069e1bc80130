"""Kafka side of scoring: rescore on every profile update (and drop the scores on its
tombstone), learn offer response rates from outcomes.

Delivery is at least once, and a batch's offsets are committed only once each of its
records is applied or dead-lettered. A failure of Redis or Kafka is the store's, not the
record's: it is retried with backoff, holding the batch (nothing skipped or committed).
Any other failure is the record's own: it goes to the stream dead-letter topic with the
reason and the batch goes on, so one poison record can neither stop scoring nor kill it
again on every restart.

A stop lets the record in hand finish and commits what was done, so a restart repeats
nothing. A crash repeats the uncommitted rest of a batch: scores are rewritten the same
(or withheld again for an erased person), outcomes are counted once by their marker, and
the records dead-lettered in that part are dead-lettered again, once per crash.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime
from typing import Any, TypeVar

import redis.exceptions
import structlog
from aiokafka import AIOKafkaConsumer, ConsumerRecord, TopicPartition
from aiokafka.errors import (
    CommitFailedError,
    IllegalStateError,
    KafkaError,
    MessageSizeTooLargeError,
)
from prometheus_client import Counter
from tenacity import AsyncRetrying, RetryCallState, retry_if_exception, wait_exponential
from tenacity.wait import wait_base

from rapport.shared import topics
from rapport.shared.deadletter import DeadLetters
from rapport.shared.events import OfferOutcome
from rapport.shared.profiles import CustomerProfile

from . import domain
from .store import ScoringStore

log = structlog.get_logger(__name__)
CONSUMED = Counter("rapport_scoring_records_total", "Records consumed by scoring",
                   ["topic", "outcome"])
RETRIED = Counter("rapport_scoring_retries_total",
                  "Retries of a Redis or Kafka call that failed transiently", ["call"])
T = TypeVar("T")

# Failures of the infrastructure, not of a record: retried until they pass. Redis being
# read-only (a failover) or out of memory is the server's state too.
TRANSIENT: tuple[type[BaseException], ...] = (
    redis.exceptions.ConnectionError, redis.exceptions.TimeoutError,
    redis.exceptions.ReadOnlyError, redis.exceptions.OutOfMemoryError,
    KafkaError, ConnectionError, TimeoutError)
# Kafka errors a retry cannot cure: a rebalance took the partitions (their new owner
# redelivers), or a dead letter too large for the topic (resent without the record).
NOT_TRANSIENT = (CommitFailedError, IllegalStateError, MessageSizeTooLargeError)


def transient(exc: BaseException) -> bool:
    return isinstance(exc, TRANSIENT) and not isinstance(exc, NOT_TRANSIENT)


class ScoringConsumer:
    def __init__(self, consumer: AIOKafkaConsumer, store: ScoringStore,
                 policy: domain.ScoringPolicy, dead_letters: DeadLetters, *,
                 retry_wait: wait_base | None = None) -> None:
        self._consumer = consumer
        self._store = store
        self._policy = policy
        self._dead_letters = dead_letters
        self._wait = retry_wait or wait_exponential(multiplier=0.1, max=10)
        self._stopping = asyncio.Event()
        self._handlers: dict[str, Callable[[ConsumerRecord], Awaitable[str]]] = {
            topics.PROFILE_UPDATES.name: self.on_profile, topics.OUTCOMES.name: self.on_outcome}

    async def on_profile(self, record: ConsumerRecord) -> str:
        if record.value is None:  # tombstone: the profile was erased or merged away
            if record.key is None:
                raise ValueError("tombstone without a key: no profile to forget")
            await self._store.forget_scores(record.key.decode())
            return "forgotten"
        profile = CustomerProfile.from_bytes(record.value)
        scores = domain.score(profile, datetime.now(UTC), self._policy)
        return "ok" if await self._store.save_scores(scores, profile.updated_at) else "erased"

    async def on_outcome(self, record: ConsumerRecord) -> str:
        outcome = OfferOutcome.from_bytes(record.value)
        counted = await self._store.count_outcome(outcome)
        # Recomputed for a repeat too: if the first attempt failed after counting (then
        # retried or redelivered), the propensity would otherwise miss this outcome.
        counts = await self._store.offer_counts(outcome.offer_id)
        exposures = max(counts.get("viewed", 0), counts.get("accepted", 0)
                        + counts.get("rejected", 0) + counts.get("ignored", 0))
        await self._store.set_propensity(
            outcome.offer_id, domain.propensity(counts.get("accepted", 0), exposures))
        return "ok" if counted else "duplicate"

    def stop(self) -> None:
        """Ask :meth:`run` to return after the record in hand, committing what is done."""
        self._stopping.set()

    async def run(self) -> None:
        while not self._stopping.is_set():
            batches = await self._retry("poll", self._consumer.getmany,
                                        timeout_ms=500, max_records=500)
            done: dict[TopicPartition, int] = {}
            for tp, records in batches.items():
                for record in records:
                    if self._stopping.is_set():
                        break
                    await self._apply(record)
                    done[tp] = record.offset + 1
            await self._commit(done)

    async def _apply(self, record: ConsumerRecord) -> None:
        """Apply one record; if it cannot be applied for a reason of its own, set it aside."""
        try:
            outcome = await self._retry("apply", self._handlers[record.topic], record)
        except Exception as exc:  # not transient, so the record's own fault
            await self._dead_letter(record, f"{type(exc).__name__}: {exc}")
            outcome = "dead_lettered"
        CONSUMED.labels(record.topic, outcome).inc()

    async def _dead_letter(self, record: ConsumerRecord, reason: str) -> None:
        async def send(value: bytes | None, why: str) -> None:
            await self._dead_letters.send(topic=record.topic, partition=record.partition,
                                          offset=record.offset, reason=why, value=value)
        try:
            await self._retry("dead_letter", send, record.value, reason)
        except MessageSizeTooLargeError:
            await self._retry("dead_letter", send, None, f"{reason} (record too large to keep)")

    async def _commit(self, done: dict[TopicPartition, int]) -> None:
        # Partitions a rebalance took are redelivered to their new owner: not ours to commit.
        mine = {tp: offset for tp, offset in done.items() if tp in self._consumer.assignment()}
        if not mine:
            return
        try:
            await self._retry("commit", self._consumer.commit, mine)
        except (CommitFailedError, IllegalStateError) as exc:
            log.warning("commit_abandoned_after_rebalance", error=repr(exc))

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
        topics.PROFILE_UPDATES.name, topics.OUTCOMES.name,
        bootstrap_servers=bootstrap, group_id=group_id, client_id="rapport-scoring",
        enable_auto_commit=False, auto_offset_reset="earliest",
    )


async def shutdown(scorer: ScoringConsumer, task: asyncio.Task[None],
                   grace_s: float = 10.0) -> None:
    """Stop cleanly (the record in hand finishes, what is done is committed); cancel
    after ``grace_s``, e.g. while Redis is down, leaving the batch to be redelivered."""
    scorer.stop()
    if task.done():  # it had died already; readiness reported it
        if not task.cancelled() and task.exception() is not None:
            log.error("scoring_consumer_failed", error=repr(task.exception()))
        return
    try:
        await asyncio.wait_for(task, timeout=grace_s)
    except TimeoutError:
        log.warning("scoring_consumer_cancelled", grace_s=grace_s)
    except Exception as exc:  # it died while finishing
        log.error("scoring_consumer_failed", error=repr(exc))
