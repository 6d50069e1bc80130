"""Hostile and careless input through the real profile service (Kafka and Redis):
ids with separators, placeholder phones, an anonymous id equal to another person's
user id, profiles that would grow without bound, ids with "/", and a poison record
among good ones, through a restart."""

import uuid
from datetime import UTC, datetime, timedelta

import orjson
import pytest
from aiokafka import AIOKafkaConsumer, TopicPartition

from rapport.profile.app import build
from rapport.profile.limits import MAX_TRAITS, RECORD_LIMIT
from rapport.profile.settings import ProfileSettings
from rapport.shared import topics
from rapport.shared.events import MessageType, Touchpoint
from rapport.shared.kafka import durable_producer, ensure_topics
from rapport.shared.topics import TopicSpec
from tests.helpers import end_offsets, eventually, facts_of, read_since, serving

CLUSTER = True  # run on the single Redis and on the local Redis Cluster

AGENT = {"Authorization": "Bearer dev-agent"}
ADMIN = {"Authorization": "Bearer dev-admin"}
T0 = datetime.now(UTC) - timedelta(days=1)


def tp(run: str, i: int, *, user: str | None = None, anon: str | None = None,
       mtype: MessageType = MessageType.IDENTIFY, event: str | None = None,
       **kw) -> Touchpoint:
    return Touchpoint(message_id=f"{run}-{i}", source="it", type=mtype, event=event,
                      user_id=user, anonymous_id=anon, channel="web",
                      timestamp=T0 + timedelta(seconds=i), received_at=datetime.now(UTC),
                      **kw)


def settings_for(target, tmp, run: str, touchpoints: TopicSpec, resolved: TopicSpec,
                 db: int = 4) -> ProfileSettings:
    stack = target.stack
    return ProfileSettings(kafka_bootstrap=stack.kafka_bootstrap,
                           redis_url=target.url(db), dev_keys=True,
                           profile_group_id=f"it-defects-{run}",
                           touchpoints_topic=touchpoints.name, resolved_topic=resolved.name,
                           demand_facts_topic=facts_of(resolved).name,
                           profile_data_dir=tmp)


@pytest.fixture(scope="module")
async def topics_and_producer(stack):
    run = uuid.uuid4().hex[:6]
    touchpoints = TopicSpec(f"it.def-touchpoints.{run}", partitions=4)
    resolved = TopicSpec(f"it.def-resolved.{run}", partitions=4)
    await ensure_topics(stack.kafka_bootstrap, [touchpoints, resolved, facts_of(resolved)])
    producer = durable_producer(stack.kafka_bootstrap, client_id="it-defects",
                                max_batch_size=256 * 1024)
    await producer.start()
    yield run, touchpoints, resolved, producer
    await producer.stop()


@pytest.fixture(scope="module")
async def profile(redis_target, tmp_path_factory, topics_and_producer):
    run, touchpoints, resolved, producer = topics_and_producer
    settings = settings_for(redis_target, tmp_path_factory.mktemp("p"), run, touchpoints,
                            resolved)
    async with serving(build(settings)) as client:
        async def publish(*tps: Touchpoint) -> None:
            for t in tps:
                await producer.send_and_wait(touchpoints.name, t.to_bytes(),
                                             key=t.customer_key.encode())
        client.publish = publish  # type: ignore[attr-defined]
        yield client


async def found(client, path: str, **params):
    resp = await client.get(path, params=params or None, headers=AGENT)
    return resp.json() if resp.status_code == 200 else None


async def settled(client, path: str, touchpoints: int, **params):
    async def check():
        body = await found(client, path, **params)
        return body if body and body["metrics"]["touchpoints"] >= touchpoints else None
    return await eventually(check, timeout=60)


def emails(body) -> set[str]:
    return {i["value"] for i in body["identities"] if i["type"] == "email"}


async def test_user_ids_with_separators_are_different_people(profile):
    run = uuid.uuid4().hex[:8]
    alice, bob = f"x|alice-{run}", f"x|bob-{run}"
    # Each browses anonymously first, then logs in: the log-in merges the anonymous
    # profile into the user's (the merge goes through the outbox, where "|" once split).
    await profile.publish(tp(run, 0, anon=f"a|{run}", mtype=MessageType.PAGE),
                          tp(run, 1, anon=f"b|{run}", mtype=MessageType.PAGE))
    await settled(profile, f"/v1/customers/~a:a|{run}", 1)
    await settled(profile, f"/v1/customers/~a:b|{run}", 1)
    await profile.publish(
        tp(run, 2, user=alice, anon=f"a|{run}",
           traits={"email": f"alice-{run}@example.com", "name": "Alice"}),
        tp(run, 3, user=bob, anon=f"b|{run}",
           traits={"email": f"bob-{run}@example.com", "name": "Bob"}))

    async def merged(user: str):
        body = await found(profile, f"/v1/customers/{user}")
        return body if body and body["metrics"]["touchpoints"] == 2 else None
    a, b = await eventually(lambda: merged(alice)), await eventually(lambda: merged(bob))
    assert a["customer_id"] == alice and b["customer_id"] == bob
    assert a["merged_from"] == [f"~a:a|{run}"] and b["merged_from"] == [f"~a:b|{run}"]
    assert emails(a) == {f"alice-{run}@example.com"} and a["traits"]["name"] == "Alice"
    assert emails(b) == {f"bob-{run}@example.com"} and b["traits"]["name"] == "Bob"
    assert await found(profile, "/v1/customers/x") is None


async def test_placeholder_phones_link_nobody_and_erasing_one_leaves_the_others(profile):
    run = uuid.uuid4().hex[:8]
    users = [f"ph-{run}-{i}" for i in range(4)]
    for i, (user, phone) in enumerate(zip(users, ("n/a", "unknown", "N/A", "---"),
                                          strict=True)):
        await profile.publish(tp(run, i, user=user, traits={"phone": phone}))
    bodies = [await settled(profile, f"/v1/customers/{u}", 1) for u in users]
    assert [b["customer_id"] for b in bodies] == users, "no two merged"
    assert all(not any(i["type"] == "phone" for i in b["identities"]) for b in bodies)
    assert await found(profile, "/v1/customers", phone="n/a") is None
    assert (await profile.delete(f"/v1/customers/{users[0]}", headers=ADMIN)).status_code == 204
    # Another placeholder-phone customer is still served, and new ones still fold.
    await profile.publish(tp(run, 10, user=users[1], event="Order Completed",
                             mtype=MessageType.TRACK, properties={"total": 5.0}))
    assert (await settled(profile, f"/v1/customers/{users[1]}", 2))["metrics"]["orders"] == 1


async def test_an_anonymous_id_equal_to_someones_user_id_does_not_join_them(profile):
    run = uuid.uuid4().hex[:8]
    victim = f"victim-{run}"
    await profile.publish(
        tp(run, 0, user=victim, traits={"email": f"victim-{run}@example.com",
                                        "phone": "+1 555 010 9999"}),
        tp(run, 1, user=victim, mtype=MessageType.TRACK, event="Order Completed",
           properties={"order_id": "o1", "total": 70.0}))
    await settled(profile, f"/v1/customers/{victim}", 2)
    attacker = f"attacker-{run}@example.com"
    await profile.publish(tp(run, 2, anon=victim, traits={"email": attacker}))
    mine = await settled(profile, "/v1/customers", 1, email=attacker)
    assert mine["customer_id"] != victim and mine["metrics"]["orders"] == 0
    body = await found(profile, f"/v1/customers/{victim}")
    assert attacker not in emails(body) and body["metrics"]["orders"] == 1


async def test_a_profile_stays_bounded_however_many_identifiers_and_traits(profile, stack):
    run = uuid.uuid4().hex[:8]
    user = f"grow-{run}"
    big = "v" * 900
    for i in range(0, 300, 50):
        await profile.publish(*[tp(run, j, user=user, traits={
            "email": f"e{j}-{run}@example.com", f"trait_{j}_a": big, f"trait_{j}_b": j,
            **{f"t{j}_{k}": k for k in range(8)}}) for j in range(i, i + 50)])
    body = await settled(profile, f"/v1/customers/{user}", 300)
    assert len(body["identities"]) <= 64
    assert len(body["traits"]) <= MAX_TRAITS
    assert len(orjson.dumps(body)) < RECORD_LIMIT
    # Identifiers past the cap link nobody: a late email resolves to no one.
    assert await found(profile, "/v1/customers", email=f"e299-{run}@example.com") is None


async def test_ids_with_a_slash_are_read_and_erased(profile):
    run = uuid.uuid4().hex[:8]
    user = f"tenant/{run}/42"
    await profile.publish(tp(run, 0, user=user, traits={"email": f"s-{run}@example.com"}))
    body = await settled(profile, f"/v1/customers/{user}", 1)
    assert body["customer_id"] == user
    timeline = await profile.get(f"/v1/customers/{user}/timeline", headers=AGENT)
    assert timeline.status_code == 200 and len(timeline.json()["touchpoints"]) == 1
    assert (await profile.delete(f"/v1/customers/{user}", headers=ADMIN)).status_code == 204
    assert (await profile.get(f"/v1/customers/{user}", headers=AGENT)).status_code == 404


async def test_one_poison_record_among_500_is_set_aside_through_a_restart(
        stack, tmp_path_factory, topics_and_producer, redis_target):
    _, _, _, producer = topics_and_producer
    run = uuid.uuid4().hex[:6]
    touchpoints = TopicSpec(f"it.poison-touchpoints.{run}", partitions=2)
    resolved = TopicSpec(f"it.poison-resolved.{run}", partitions=2)
    await ensure_topics(stack.kafka_bootstrap, [touchpoints, resolved, facts_of(resolved)])
    letters_from = await end_offsets(stack.kafka_bootstrap, topics.STREAM_DEAD_LETTER)
    settings = settings_for(redis_target, tmp_path_factory.mktemp("poison"), run, touchpoints,
                            resolved, db=5)
    users = [f"pz-{run}-{i}" for i in range(500)]
    good = [tp(run, i, user=u, mtype=MessageType.TRACK, event="Order Completed",
               properties={"order_id": f"o{i}", "total": 10.0}) for i, u in enumerate(users)]
    for t in good[:250]:
        await producer.send(touchpoints.name, t.to_bytes(), key=t.customer_key.encode())
    # Poison: valid JSON that is no touchpoint (it fails validation in stage 1).
    await producer.send_and_wait(touchpoints.name, b'{"message_id": 7, "type": "track"}',
                                 key=b"poison")
    async with serving(build(settings)) as client:
        await eventually(lambda: found(client, f"/v1/customers/{users[100]}"), timeout=60)
    # Restarted: the rest arrives; the poison record is neither applied nor set aside again.
    for t in good[250:]:
        await producer.send(touchpoints.name, t.to_bytes(), key=t.customer_key.encode())
    await producer.flush()
    async with serving(build(settings)) as client:
        async def all_there():
            bodies = [await found(client, f"/v1/customers/{u}") for u in users[::25]]
            last = await found(client, f"/v1/customers/{users[-1]}")
            return all(bodies) and last
        await eventually(all_there, timeout=90)
        for u in users:
            body = await found(client, f"/v1/customers/{u}")
            assert body and body["metrics"]["orders"] == 1, u
    letters = await read_since(stack.kafka_bootstrap, topics.STREAM_DEAD_LETTER, letters_from,
                               until=lambda rs: False, timeout=3)
    mine = [orjson.loads(r.value) for r in letters]
    mine = [m for m in mine if m["topic"] == touchpoints.name]
    assert len(mine) == 1 and mine[0]["stage"] == "resolve"
    assert "undecodable touchpoint" in mine[0]["reason"]


async def test_records_written_stay_under_the_producer_limit(stack, topics_and_producer):
    """Every profile-updates record of this module's profiles is under the limit."""
    consumer = AIOKafkaConsumer(bootstrap_servers=stack.kafka_bootstrap)
    await consumer.start()
    try:
        parts = [TopicPartition(topics.PROFILE_UPDATES.name, p)
                 for p in range(topics.PROFILE_UPDATES.partitions)]
        ends = await consumer.end_offsets(parts)
    finally:
        await consumer.stop()
    since = {tp.partition: max(0, end - 200) for tp, end in ends.items()}
    records = await read_since(stack.kafka_bootstrap, topics.PROFILE_UPDATES, since,
                               until=lambda rs: False, timeout=3)
    assert records and max(len(r.value or b"") for r in records) < RECORD_LIMIT
