"""The shared batch loop's own rules, with a small fake consumer: records reach their
topic's handler in offset order, offsets are committed only for what was stored and is
still assigned, a fenced batch is not committed, and a stop ends after the batch."""

from __future__ import annotations

import asyncio

from aiokafka import TopicPartition
from aiokafka.errors import CommitFailedError, KafkaTimeoutError
from aiokafka.structs import ConsumerRecord

from rapport.shared.batching import BatchLoop
from rapport.shared.fencing import Fenced

A, B = "a.topic", "b.topic"


def rec(topic: str, partition: int, offset: int) -> ConsumerRecord:
    return ConsumerRecord(topic, partition, offset, 0, 0, None, b"v", None, 0, 1, [])


class FakeConsumer:
    def __init__(self, polls, assigned=None, commit_failures=()) -> None:
        self.polls = list(polls)
        self.commits: list[dict[tuple[str, int], int]] = []
        self.assigned = assigned
        self.failures = list(commit_failures)
        self.loop: BatchLoop | None = None

    async def getmany(self, timeout_ms=0, max_records=None):
        if not self.polls:
            self.loop.stop()
            return {}
        out = {}
        for r in self.polls.pop(0):
            out.setdefault(TopicPartition(r.topic, r.partition), []).append(r)
        return out

    def assignment(self):
        if self.assigned is not None:
            return self.assigned
        return {TopicPartition(t, p) for t in (A, B) for p in range(4)}

    async def commit(self, offsets):
        if self.failures:
            raise self.failures.pop(0)
        self.commits.append({(tp.topic, tp.partition): o for tp, o in offsets.items()})

    def subscribe(self, topics, *, listener):
        pass


async def run(consumer: FakeConsumer, handlers, **kw) -> None:
    loop = BatchLoop(consumer, handlers, group="g", commit_retry_s=1, **kw)
    consumer.loop = loop
    await asyncio.wait_for(loop.run(), 5)


async def test_each_topic_gets_its_records_in_offset_order_then_they_are_committed():
    seen: list[tuple[str, int, int]] = []

    async def handler(records):
        seen.extend((r.topic, r.partition, r.offset) for r in records)

    consumer = FakeConsumer([[rec(A, 1, 7), rec(A, 0, 3), rec(A, 0, 4), rec(B, 2, 9)]])
    await run(consumer, {A: handler, B: handler}, sequential=True)
    assert seen == [(A, 0, 3), (A, 0, 4), (A, 1, 7), (B, 2, 9)]
    assert consumer.commits == [{(A, 0): 5, (A, 1): 8, (B, 2): 10}]


async def test_a_fenced_topic_is_not_committed_and_the_others_are():
    async def fenced(records):
        raise Fenced("a newer owner")

    async def fine(records):
        return None

    consumer = FakeConsumer([[rec(A, 0, 1), rec(B, 0, 1)]])
    await run(consumer, {A: fenced, B: fine})
    assert consumer.commits == [{(B, 0): 2}]


async def test_only_partitions_still_assigned_are_committed():
    async def fine(records):
        return None

    consumer = FakeConsumer([[rec(A, 0, 1), rec(A, 1, 1)]], assigned={TopicPartition(A, 1)})
    await run(consumer, {A: fine})
    assert consumer.commits == [{(A, 1): 2}]


async def test_a_transient_commit_failure_is_retried_and_a_refused_one_given_up():
    async def fine(records):
        return None

    retried = FakeConsumer([[rec(A, 0, 1)]], commit_failures=[KafkaTimeoutError()])
    await run(retried, {A: fine})
    assert retried.commits == [{(A, 0): 2}]
    refused = FakeConsumer([[rec(A, 0, 1)]], commit_failures=[CommitFailedError("gen")])
    await run(refused, {A: fine})
    assert refused.commits == []


async def test_a_stop_ends_the_loop_after_the_batch_in_hand():
    handled = []

    async def stopping(records):
        handled.append(len(records))
        loop.stop()

    consumer = FakeConsumer([[rec(A, 0, 1)], [rec(A, 0, 2)]])
    loop = BatchLoop(consumer, {A: stopping}, group="g")
    consumer.loop = loop
    await asyncio.wait_for(loop.run(), 5)
    assert handled == [1] and consumer.commits == [{(A, 0): 2}]


async def test_a_replay_reads_its_partitions_from_the_start_and_commits_nothing():
    seen: list[int] = []

    async def handler(records):
        seen.extend(r.offset for r in records)

    class Replayed(FakeConsumer):
        def assign(self, partitions):
            self.assigned = set(partitions)

        async def seek_to_beginning(self, *partitions):
            self.rewound = set(partitions)

    consumer = Replayed([[rec(A, 0, 0), rec(A, 0, 1)], [rec(A, 0, 2)]])
    loop = BatchLoop(consumer, {A: handler}, group="g")
    consumer.loop = loop
    await loop.replay([TopicPartition(A, 0)])
    assert loop.joined.is_set() and consumer.rewound == {TopicPartition(A, 0)}
    await asyncio.wait_for(loop.run(), 5)
    assert seen == [0, 1, 2]
    assert consumer.commits == []
