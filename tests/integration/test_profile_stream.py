"""The profile stream processors against the real Kafka and Redis: identities
stitched across channels, merges, the over-merge guard, segments, redelivery
and erasure."""

import uuid
from datetime import UTC, datetime, timedelta

import orjson
import pytest

from rapport.profile.app import build
from rapport.profile.settings import ProfileSettings
from rapport.shared import topics
from rapport.shared.events import Channel, MessageType, Touchpoint
from rapport.shared.kafka import durable_producer, ensure_topics
from rapport.shared.profiles import CustomerProfile
from rapport.shared.topics import TopicSpec
from tests.helpers import end_offsets, eventually, facts_of, read_since, serving

CLUSTER = True  # run on the single Redis and on the local Redis Cluster

AGENT = {"Authorization": "Bearer dev-agent"}
ADMIN = {"Authorization": "Bearer dev-admin"}
OPS = {"Authorization": "Bearer dev-ops"}
T0 = datetime.now(UTC) - timedelta(days=1)


def tp(run: str, i: int, event: str | None = "Product Viewed", *, user: str | None = None,
       anon: str | None = None, mtype: MessageType = MessageType.TRACK,
       channel: Channel = Channel.WEB, minute: int | None = None, received=None,
       **kw) -> Touchpoint:
    return Touchpoint(message_id=f"{run}-{i}", source="it", type=mtype, event=event,
                      user_id=user, anonymous_id=anon, channel=channel,
                      timestamp=T0 + timedelta(minutes=i if minute is None else minute),
                      received_at=received or datetime.now(UTC), **kw)


@pytest.fixture(scope="module")
async def profile(stack, tmp_path_factory, redis_target):
    run = uuid.uuid4().hex[:6]
    touchpoints = TopicSpec(f"it.touchpoints.{run}", partitions=4)
    resolved = TopicSpec(f"it.resolved.{run}", partitions=4)
    await ensure_topics(stack.kafka_bootstrap, [touchpoints, resolved, facts_of(resolved)])
    settings = ProfileSettings(kafka_bootstrap=stack.kafka_bootstrap,
                               redis_url=redis_target.url(1), dev_keys=True,
                               profile_group_id=f"it-profile-{run}",
                               touchpoints_topic=touchpoints.name,
                               resolved_topic=resolved.name,
                               demand_facts_topic=facts_of(resolved).name,
                               identity_join_limit=3,
                               profile_data_dir=tmp_path_factory.mktemp("profile"))
    producer = durable_producer(stack.kafka_bootstrap, client_id="it-producer")
    await producer.start()
    async with serving(build(settings)) as client:
        client.publish = lambda t: producer.send_and_wait(  # type: ignore[attr-defined]
            touchpoints.name, t.to_bytes(), key=t.customer_key.encode())
        yield client
    await producer.stop()


async def get(client, identifier: str, **params):
    path = "/v1/customers" if params else f"/v1/customers/{identifier}"
    resp = await client.get(path, params=params or None, headers=AGENT)
    return resp.json() if resp.status_code == 200 else None


async def until_profile(client, identifier: str, touchpoints: int, timeout: float = 90,
                        merged: int = 0):
    seen: list = [None]

    async def check():
        body = seen[0] = await get(client, identifier)
        done = body and body["metrics"]["touchpoints"] == touchpoints \
            and len(body["merged_from"]) >= merged
        return body if done else None
    try:
        return await eventually(check, timeout=timeout)
    except AssertionError as exc:
        last = seen[0] and {k: seen[0][k] for k in ("metrics", "merged_from", "identities")}
        raise AssertionError(f"{exc}; the profile last seen: {last}") from None


async def test_one_person_across_channels_becomes_one_profile(profile):
    run = uuid.uuid4().hex[:8]
    user, anon = f"u-{run}", f"a-{run}"
    email, phone, card = f"{run}@Example.com", "+1 555 0100", f"L-{run}"
    events = [
        tp(run, 0, None, anon=anon, mtype=MessageType.PAGE, name="Home"),
        tp(run, 1, "Product Viewed", anon=anon, properties={"category": "shoes"}),
        tp(run, 2, None, user=user, anon=anon, mtype=MessageType.IDENTIFY,
           traits={"email": email, "region": "west"}),
        tp(run, 3, "Order Completed", user=user, properties={"total": 80.0}),
        # The call center knows the phone, the store the loyalty card; both were linked
        # to the user by an identify that arrives *late* (event time earlier).
        tp(run, 6, "Call Started", channel=Channel.CALL_CENTER, mtype=MessageType.TRACK,
           anon=f"cc-{run}", traits={"phone": phone}),
        tp(run, 7, "Order Completed", channel=Channel.STORE, anon=f"pos-{run}",
           traits={"loyalty_id": card}, properties={"total": 20.0}),
        tp(run, 5, None, user=user, mtype=MessageType.IDENTIFY,
           traits={"phone": phone, "loyalty_id": card}),
    ]
    for event in events:
        await profile.publish(event)
    # The events have different keys, so their partitions may be resolved in any order:
    # an anonymous touchpoint found a profile of its own (merged later) or arrived once
    # its identifier was the user's already (linked straight away).
    body = await until_profile(profile, user, len(events))
    assert body["customer_id"] == user
    assert (body["metrics"]["orders"], body["metrics"]["revenue"]) == (2, 100.0)
    assert body["channels"]["call_center"]["count"] == 1
    assert body["channels"]["store"]["count"] == 1
    assert {(i["type"], i["value"]) for i in body["identities"]} >= {
        ("user_id", user), ("anonymous_id", anon), ("email", email.lower()),
        ("phone", "+15550100"), ("loyalty_id", card)}
    # Anonymous founders have ids of their own namespace (no user id can take them).
    assert set(body["merged_from"]) <= {f"~a:{anon}", f"~a:cc-{run}", f"~a:pos-{run}"}
    for params in ({"email": email}, {"phone": phone}, {"anonymous_id": anon},
                   {"loyalty_id": card}):
        assert (await get(profile, "", **params))["customer_id"] == user
    for other in (anon, f"cc-{run}", f"pos-{run}"):
        assert (await get(profile, other))["customer_id"] == user
    timeline = (await profile.get(f"/v1/customers/{anon}/timeline",
                                  headers=AGENT)).json()["touchpoints"]
    assert [t["message_id"] for t in timeline] == [
        f"{run}-{i}" for i in (7, 6, 5, 3, 2, 1, 0)]  # newest first, by event time
    assert body["affinities"]["shoes"] > 0
    assert "buyers" in body["segments"]


async def test_over_merging_is_refused_and_recorded(stack, profile):
    run = uuid.uuid4().hex[:8]
    since = await end_offsets(stack.kafka_bootstrap, topics.IDENTITY_EVENTS)
    family = f"family-{run}@example.com"
    for i in range(6):  # six people share one email, one after another; the limit is 3 joins
        await profile.publish(tp(run, i, None, user=f"m{i}-{run}", mtype=MessageType.IDENTIFY,
                              traits={"email": family}))
        await eventually(lambda i=i: get(profile, f"m{i}-{run}"), timeout=60)
    owner = (await get(profile, "", email=family))["customer_id"]
    assert owner == f"m0-{run}"
    merged = (await until_profile(profile, owner, 4, merged=3))["merged_from"]
    assert sorted(merged) == [f"m{i}-{run}" for i in (1, 2, 3)]
    events = await read_since(stack.kafka_bootstrap, topics.IDENTITY_EVENTS, since,
                              until=lambda rs: sum(b"link_refused" in r.value
                                                   for r in rs) >= 2)
    refused = [orjson.loads(r.value) for r in events if b"link_refused" in r.value]
    assert len(refused) >= 2 and all(e["other_profile_id"] == owner for e in refused)
    assert {e["profile_id"] for e in refused} == {f"m4-{run}", f"m5-{run}"}
    merges = [orjson.loads(r.value) for r in events if b'"merged"' in r.value]
    assert sorted(e["absorbed_id"] for e in merges if e["profile_id"] == owner) == \
        [f"m{i}-{run}" for i in (1, 2, 3)], merges


async def test_resends_and_redeliveries_count_once(profile):
    run = uuid.uuid4().hex[:8]
    order = tp(run, 0, "Order Completed", user=f"u-{run}", properties={"total": 10.0})
    for _ in range(3):  # the same message reached Kafka three times
        await profile.publish(order)
    await profile.publish(tp(run, 1, user=f"u-{run}"))
    body = await until_profile(profile, f"u-{run}", 2)
    assert (body["metrics"]["orders"], body["metrics"]["revenue"]) == (1, 10.0)


async def test_segments_are_listed_with_counts(profile):
    resp = await profile.get("/v1/segments", headers=OPS)
    assert resp.status_code == 200
    segments = {s["name"]: s for s in resp.json()["segments"]}
    assert segments["buyers"]["members"] >= 1
    assert (await profile.get("/v1/segments", headers=AGENT)).status_code == 403


async def test_erasure_really_erases_and_replays_do_not_bring_them_back(stack, profile):
    run = uuid.uuid4().hex[:8]
    user, email = f"gone-{run}", f"gone-{run}@example.com"
    first = [tp(run, 0, None, user=user, mtype=MessageType.IDENTIFY, traits={"email": email}),
             tp(run, 1, "Order Completed", user=user, properties={"total": 5.0})]
    for event in first:
        await profile.publish(event)
    await until_profile(profile, user, 2)
    updates_since = await end_offsets(stack.kafka_bootstrap, topics.PROFILE_UPDATES)
    assert (await profile.delete(f"/v1/customers/{email}", headers=AGENT)).status_code == 403
    assert (await profile.delete(f"/v1/customers/{email}", headers=ADMIN)).status_code == 204
    assert await get(profile, user) is None and await get(profile, "", email=email) is None
    assert (await profile.get(f"/v1/customers/{user}/timeline", headers=AGENT)
            ).status_code == 404
    tombstones = await read_since(stack.kafka_bootstrap, topics.PROFILE_UPDATES, updates_since,
                                  until=lambda rs: any(r.key == user.encode() for r in rs))
    assert any(r.key == user.encode() and r.value is None for r in tombstones)

    # A replay of the old touchpoints (same received time) does not bring them back ...
    for event in first:
        await profile.publish(event.model_copy(update={"message_id": event.message_id + "-r"}))
    # ... while their return afterwards starts a fresh profile.
    await profile.publish(tp(run, 9, "Product Viewed", user=user))
    body = await until_profile(profile, user, 1)
    assert body["metrics"]["orders"] == 0 and body["traits"] == {}


async def test_profile_updates_are_published(stack, profile):
    run = uuid.uuid4().hex[:8]
    since = await end_offsets(stack.kafka_bootstrap, topics.PROFILE_UPDATES)
    await profile.publish(tp(run, 0, "Order Completed", user=f"pub-{run}",
                          properties={"total": 3.0}))
    records = await read_since(stack.kafka_bootstrap, topics.PROFILE_UPDATES, since,
                               until=lambda rs: any(r.key == f"pub-{run}".encode()
                                                    for r in rs))
    latest = [CustomerProfile.from_bytes(r.value) for r in records
              if r.key == f"pub-{run}".encode()]
    assert latest[-1].metrics.orders == 1
