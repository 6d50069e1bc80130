"""The scoring consumer's failure handling, with fakes for Kafka and Redis: transient
failures wait (nothing skipped or committed), a record's own failure dead-letters that
record only, and offsets are committed once the whole batch is done."""

from datetime import UTC, datetime

import orjson
import pytest
import redis.exceptions
from aiokafka import ConsumerRecord, TopicPartition
from aiokafka.errors import CommitFailedError, KafkaTimeoutError, MessageSizeTooLargeError
from tenacity import wait_none

from rapport.scoring.consumers import ScoringConsumer
from rapport.shared import topics
from rapport.shared.deadletter import DeadLetters
from rapport.shared.profiles import CustomerProfile, Metrics
from rapport.shared.scores.compute import ScoringPolicy
from rapport.shared.scores.model import PRIOR

UPDATES = topics.PROFILE_UPDATES.name
NOW = datetime(2026, 11, 23, tzinfo=UTC)


def good(pid: str) -> bytes:
    p = CustomerProfile(customer_id=pid, updated_at=NOW, metrics=Metrics(
        orders=2, revenue=100, first_order_at=NOW, last_order_at=NOW, first_seen=NOW,
        last_seen=NOW))
    p.purchases.add(NOW, 100.0)
    return p.to_bytes()


# Valid JSON, but a purchase day that is no day: the profile does not validate.
BAD_DAY = b'{"customer_id": "x", "purchases": {"days": {"monday": 3.0}}}'


def record(offset: int, value: bytes | None, partition: int = 0,
           key: bytes | None = b"k") -> ConsumerRecord:
    return ConsumerRecord(UPDATES, partition, offset, 0, 0, key, value, None, 0, 0, ())


class Journal(list):
    """What happened, in order, across the fakes."""


class FakeConsumer:
    def __init__(self, journal, batches, commit_failures=()):
        self.journal = journal
        self.batches = list(batches)
        self.commit_failures = list(commit_failures)
        self.scorer = None

    async def getmany(self, timeout_ms, max_records):
        if not self.batches:
            self.scorer.stop()
            return {}
        batch = self.batches.pop(0)
        grouped = {}
        for r in batch:
            grouped.setdefault(TopicPartition(r.topic, r.partition), []).append(r)
        return grouped

    def assignment(self):
        return {TopicPartition(UPDATES, p) for p in range(8)}

    async def commit(self, offsets):
        if self.commit_failures:
            raise self.commit_failures.pop(0)
        self.journal.append(("commit", {tp.partition: o for tp, o in offsets.items()}))


class FakePopulation:
    """Journals each change: a point added ("scored") or retracted ("forgotten")."""

    def __init__(self, journal, failures):
        self.journal = journal
        self.failures = failures
        self.on_apply = None

    async def apply(self, partition, changes):
        for change in changes:
            pending = self.failures.get(change.customer_id)
            if pending:
                raise pending.pop(0)
        for change in changes:
            self.journal.append(("scored" if change.point else "forgotten", change.customer_id))
        if self.on_apply:
            self.on_apply()
        return len(changes)


class FakeReader:
    policy = ScoringPolicy()

    async def model(self):
        return PRIOR


class FakeStore:
    async def erased_markers(self, customer_ids):
        return [None for _ in customer_ids]


class FakeProducer:
    def __init__(self, journal, failures=()):
        self.journal = journal
        self.failures = list(failures)

    async def send_and_wait(self, topic, value):
        if self.failures:
            raise self.failures.pop(0)
        self.journal.append(("dead_letter", orjson.loads(value)))


async def run(batches, *, population_failures=None, producer_failures=(), commit_failures=(),
              stop_after=None):
    journal = Journal()
    consumer = FakeConsumer(journal, batches, commit_failures)
    # customer id -> exceptions to raise first
    population = FakePopulation(journal, dict(population_failures or {}))
    scorer = ScoringConsumer(consumer, FakeStore(), FakeReader(), population,
                             DeadLetters(FakeProducer(journal, producer_failures), "scoring"),
                             retry_wait=wait_none())
    consumer.scorer = scorer
    if stop_after is not None:  # stop once a partition's changes are applied
        population.on_apply = scorer.stop
    await scorer.run()
    return journal


async def test_poison_records_are_dead_lettered_and_the_batch_goes_on():
    journal = await run([[record(0, good("a")), record(1, b"\x00 not json at all"),
                          record(2, BAD_DAY), record(3, b'{"customer_id": 5}'),
                          record(0, good("b"), partition=1), record(4, good("c"))]])
    assert [e[1] for e in journal if e[0] == "scored"] == ["a", "c", "b"]
    letters = [e[1] for e in journal if e[0] == "dead_letter"]
    assert [(d["topic"], d["partition"], d["offset"]) for d in letters] == [
        (UPDATES, 0, 1), (UPDATES, 0, 2), (UPDATES, 0, 3)]
    assert letters[0]["reason"].startswith("error:")  # zlib's: it is no JSON
    assert letters[1]["reason"].startswith("ValidationError:")
    assert letters[2]["reason"].startswith("ValidationError:")
    assert {d["stage"] for d in letters} == {"scoring"}
    assert journal[-1] == ("commit", {0: 5, 1: 1})  # after every record, and only then
    assert sum(1 for e in journal if e[0] == "commit") == 1


async def test_transient_redis_failures_are_retried_without_skipping_or_committing():
    flaky = {"b": [redis.exceptions.ConnectionError("down"), redis.exceptions.TimeoutError(),
                   ConnectionResetError()]}
    journal = await run([[record(0, good("a")), record(1, good("b")), record(2, good("c"))]],
                        population_failures=flaky)
    assert journal == [("scored", "a"), ("scored", "b"), ("scored", "c"), ("commit", {0: 3})]


async def test_a_dead_letter_kafka_cannot_take_yet_is_retried_and_one_too_large_kept_short():
    journal = await run([[record(0, b"junk"), record(1, b"junk too"), record(2, good("a"))]],
                        producer_failures=[KafkaTimeoutError(), MessageSizeTooLargeError()])
    letters = [e[1] for e in journal if e[0] == "dead_letter"]
    assert [d["offset"] for d in letters] == [0, 1]  # the first after a timeout, once
    assert letters[0]["value"] is None and letters[0]["reason"].endswith(
        "(record too large to keep)")
    assert letters[1]["value"] is not None
    assert journal[-2:] == [("scored", "a"), ("commit", {0: 3})]


async def test_a_stop_commits_exactly_what_was_applied():
    batch = [record(i, good(f"p{i}")) for i in range(5)]
    journal = await run([batch, [record(5, good("later"))]], stop_after=1)
    assert journal == [*(("scored", f"p{i}") for i in range(5)), ("commit", {0: 5})]


async def test_tombstones_retract_the_point_and_need_a_key():
    journal = await run([[record(0, None, key=b"gone"), record(1, None, key=None)]])
    assert journal[0][0] == "dead_letter" and "without a key" in journal[0][1]["reason"]
    assert journal[1] == ("forgotten", "gone")
    assert journal[2] == ("commit", {0: 2})


@pytest.mark.parametrize(("failure", "committed"), [
    (KafkaTimeoutError(), True),   # transient: retried
    (CommitFailedError("rebalanced"), False),  # the new owner redelivers: given up
])
async def test_commit_failures(failure, committed):
    journal = await run([[record(0, good("a"))]], commit_failures=[failure])
    assert (("commit", {0: 1}) in journal) is committed
    assert journal[0] == ("scored", "a")
