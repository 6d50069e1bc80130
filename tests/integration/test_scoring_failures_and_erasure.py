"""Scoring against the real Kafka and Redis when records are bad or people are gone:
poison records are dead-lettered while the rest is counted, a restart neither repeats
nor loses anything, tombstones retract a customer's point from the population, and a
lagging consumer does not count someone erased since."""

import asyncio
import base64
import uuid
from collections import Counter
from datetime import UTC, datetime, timedelta

import orjson
import pytest
from aiokafka import AIOKafkaConsumer, TopicPartition

from rapport.scoring.app import build as build_scoring
from rapport.scoring.population import PopulationStore
from rapport.scoring.settings import ScoringSettings
from rapport.scoring.store import ScoringStore
from rapport.shared import keys, redis_store, topics
from rapport.shared.kafka import durable_producer
from rapport.shared.profiles import CustomerProfile, Metrics
from tests.conftest import redis_url
from tests.helpers import end_offsets, eventually, read_between, serving

GOOD = 500


def scoring_settings(stack) -> ScoringSettings:
    return ScoringSettings(kafka_bootstrap=stack.kafka_bootstrap, redis_url=redis_url(stack, 3),
                           dev_keys=True, scoring_group_id=f"it-scoring-{uuid.uuid4().hex[:6]}")


def profile(pid: str, updated_at: datetime | None = None) -> bytes:
    now = datetime.now(UTC)
    p = CustomerProfile(customer_id=pid, updated_at=updated_at, metrics=Metrics(
        orders=3, revenue=300, first_order_at=now - timedelta(days=60), last_order_at=now,
        first_seen=now - timedelta(days=90), last_seen=now))
    for days in (60, 30, 0):
        p.purchases.add(now - timedelta(days=days), 100.0)
    return p.to_bytes()


async def point_of(redis, settings, pid: str) -> bytes | None:
    """The customer's point in whichever partition's population holds it."""
    fp = settings.fingerprints().profile(pid)
    for partition in range(topics.PROFILE_UPDATES.partitions):
        found = await redis.hget(keys.population_points(partition), fp)
        if found is not None:
            return found
    return None


async def committed(bootstrap: str, group: str) -> dict[int, int]:
    """The group's committed offset per partition of the profile-updates topic."""
    consumer = AIOKafkaConsumer(bootstrap_servers=bootstrap, group_id=group,
                                enable_auto_commit=False)
    await consumer.start()
    try:
        return {p: await consumer.committed(TopicPartition(topics.PROFILE_UPDATES.name, p))
                or 0 for p in range(topics.PROFILE_UPDATES.partitions)}
    finally:
        await consumer.stop()


@pytest.fixture
async def producer(stack):
    producer = durable_producer(stack.kafka_bootstrap, client_id="it-scoring")
    await producer.start()
    yield producer
    await producer.stop()


@pytest.fixture
async def redis(stack):
    client = redis_store.connect(redis_url(stack, 3))
    yield client
    await client.aclose()


@pytest.fixture
def saves(monkeypatch):
    """Count the population changes applied per customer (across restarts), each batch a
    little slow, so a stop falls in the middle of the stream."""
    calls: Counter[str] = Counter()
    original = PopulationStore.apply

    async def counting(self, partition, changes):
        await asyncio.sleep(0.02)
        applied = await original(self, partition, changes)
        for change in changes[len(changes) - applied:] if applied else ():
            calls[change.customer_id] += 1
        return applied

    monkeypatch.setattr(PopulationStore, "apply", counting)
    return calls


async def test_poison_is_dead_lettered_and_a_restart_repeats_and_loses_nothing(
        stack, producer, redis, saves):
    settings = scoring_settings(stack)
    tag = uuid.uuid4().hex[:8]
    ours = [f"it-{tag}-{i}" for i in range(GOOD)]
    naive = (b'{"customer_id": "it-%s-bad-day", "purchases": {"days": {"monday": 3.0}}}'
             % tag.encode())
    garbage = b"not json at all " + tag.encode()
    letters_since = await end_offsets(stack.kafka_bootstrap, topics.STREAM_DEAD_LETTER)
    for i, pid in enumerate(ours):
        if i == 137:  # valid JSON that scoring cannot apply (a purchase day that is none)
            await producer.send(topics.PROFILE_UPDATES.name, naive, key=b"naive-" + tag.encode())
        if i == 311:  # not JSON at all
            await producer.send(topics.PROFILE_UPDATES.name, garbage, key=b"junk-" + tag.encode())
        await producer.send(topics.PROFILE_UPDATES.name, profile(pid), key=pid.encode())
    await producer.flush()

    def scored() -> int:
        return sum(1 for pid in ours if saves[pid])

    async def scored_at_least(n: int) -> bool:
        return scored() >= n

    async with serving(build_scoring(settings)):
        await eventually(lambda: scored_at_least(100), timeout=60)
    assert scored() < GOOD, "the stop should fall in the middle of the stream"

    async with serving(build_scoring(settings)) as client:  # the restart
        await eventually(lambda: scored_at_least(GOOD), timeout=60)
        assert (await client.get("/readyz")).json()["checks"]["consumer"] == "ok"
    assert all(saves[pid] == 1 for pid in ours), "counted twice across the restart"
    points = [await point_of(redis, settings, pid) for pid in ours]
    assert all(p is not None for p in points)

    # Both stops were clean: every record is committed, each poison set aside.
    ends = await end_offsets(stack.kafka_bootstrap, topics.PROFILE_UPDATES)
    assert await committed(stack.kafka_bootstrap, settings.scoring_group_id) == ends
    letters = [orjson.loads(r.value) for r in await read_between(
        stack.kafka_bootstrap, topics.STREAM_DEAD_LETTER, letters_since,
        await end_offsets(stack.kafka_bootstrap, topics.STREAM_DEAD_LETTER))]
    found = [d for d in letters if d["stage"] == "scoring"
             and tag.encode() in base64.b64decode(d["value"] or "")]
    # Dead letters are at least once (a send retried after a timeout may land twice):
    # one per source record.
    mine = list({(d["topic"], d["partition"], d["offset"]): d for d in found}.values())
    assert sorted(base64.b64decode(d["value"]) for d in mine) == sorted([naive, garbage])
    assert all(d["topic"] == topics.PROFILE_UPDATES.name for d in mine)
    reasons = sorted(d["reason"].split(":")[0] for d in mine)
    assert reasons == ["ValidationError", "error"]  # pydantic's, and zlib's on the non-JSON


async def test_a_tombstone_retracts_the_point(stack, producer, redis):
    settings = scoring_settings(stack)
    merged = f"it-{uuid.uuid4().hex[:8]}-merged-away"
    async with serving(build_scoring(settings)):
        await producer.send_and_wait(topics.PROFILE_UPDATES.name, profile(merged),
                                     key=merged.encode())
        await eventually(lambda: point_of(redis, settings, merged))
        await producer.send_and_wait(topics.PROFILE_UPDATES.name, None, key=merged.encode())
        await eventually(lambda: _gone(redis, settings, merged))


async def test_a_lagging_update_does_not_score_an_erased_person_back(stack, producer, redis):
    settings = scoring_settings(stack)
    erased = f"it-{uuid.uuid4().hex[:8]}-erased"
    erased_at = datetime.now(UTC).replace(microsecond=0) - timedelta(minutes=5)
    marker = keys.erased_profile(settings.fingerprints().profile(erased))
    await redis.set(marker, int(erased_at.timestamp() * 1000))

    async with serving(build_scoring(settings)):
        # An update from before the erasure, and one of the very same millisecond.
        for version in (erased_at - timedelta(days=1), erased_at):
            sent = await producer.send_and_wait(topics.PROFILE_UPDATES.name,
                                                profile(erased, version), key=erased.encode())
            await eventually(lambda sent=sent: _committed_past(stack, settings, sent))
            assert await point_of(redis, settings, erased) is None, version

        # The person came back after the erasure: scored again.
        await producer.send_and_wait(topics.PROFILE_UPDATES.name,
                                     profile(erased, erased_at + timedelta(seconds=1)),
                                     key=erased.encode())
        await eventually(lambda: point_of(redis, settings, erased))


async def _gone(redis, settings, pid: str) -> bool:
    return await point_of(redis, settings, pid) is None


async def _committed_past(stack, settings, sent) -> bool:
    offsets = await committed(stack.kafka_bootstrap, settings.scoring_group_id)
    return offsets[sent.partition] > sent.offset


async def test_the_erasure_check_is_safe_when_in_doubt(stack, redis):
    fingerprints = scoring_settings(stack).fingerprints()
    store = ScoringStore(redis, fingerprints)
    pid = f"it-{uuid.uuid4().hex[:8]}"
    marker = keys.erased_profile(fingerprints.profile(pid))
    assert await store.erased_markers([pid]) == [None]
    await redis.set(marker, b"garbled")  # erased at a time nobody can read: any version
    assert (await store.erased_markers([pid]))[0] >= 2**62
    await redis.set(marker, 1234)
    assert await store.erased_markers([pid, "someone-else"]) == [1234, None]
