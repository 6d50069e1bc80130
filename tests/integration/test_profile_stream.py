"""The profile stream processor against the real Kafka and Redis: touchpoints
produced to Kafka become profiles in Redis and updates on the compacted topic,
and redelivered records are never counted twice."""

import uuid
from datetime import UTC, datetime, timedelta

import pytest

from rapport.profile.app import build
from rapport.profile.settings import ProfileSettings
from rapport.profile.store import ProfileStore
from rapport.profile.streams import ProfileProcessor
from rapport.shared import redis_store, topics
from rapport.shared.events import Channel, MessageType, Touchpoint
from rapport.shared.kafka import durable_producer
from rapport.shared.profiles import CustomerProfile
from tests.conftest import redis_url
from tests.helpers import end_offsets, eventually, read_since, serving

AGENT = {"Authorization": "Bearer dev-agent"}


def touchpoint(customer: str, i: int, event: str = "Order Completed", **kw) -> Touchpoint:
    now = datetime.now(UTC)
    return Touchpoint(message_id=f"{customer}-{i}", source="it", type=MessageType.TRACK,
                      event=event, user_id=customer, channel=kw.pop("channel", Channel.WEB),
                      timestamp=now - timedelta(minutes=10 - i), received_at=now, **kw)


@pytest.fixture
async def producer(stack):
    p = durable_producer(stack.kafka_bootstrap, client_id="it-producer")
    await p.start()
    yield p
    await p.stop()


async def test_touchpoints_on_kafka_become_a_profile_and_an_update(stack, producer, tmp_path):
    settings = ProfileSettings(kafka_bootstrap=stack.kafka_bootstrap,
                               redis_url=redis_url(stack, 1), dev_keys=True,
                               profile_group_id=f"it-profile-{uuid.uuid4().hex[:6]}",
                               profile_data_dir=tmp_path)
    customer = f"it-{uuid.uuid4().hex[:8]}"
    updates_since = await end_offsets(stack.kafka_bootstrap, topics.PROFILE_UPDATES)
    async with serving(build(settings)) as client:
        for i, (event, total) in enumerate([("Order Completed", 20.0), ("Product Viewed", 0),
                                            ("Order Completed", 30.5)]):
            tp = touchpoint(customer, i, event, properties={"total": total},
                            anonymous_id=f"a-{customer}")
            await producer.send_and_wait(topics.TOUCHPOINTS.name, tp.to_bytes(),
                                         key=customer.encode())

        async def three_touchpoints():
            r = await client.get(f"/v1/customers/{customer}", headers=AGENT)
            return r.json() if r.status_code == 200 and \
                r.json()["metrics"]["touchpoints"] == 3 else None

        body = await eventually(three_touchpoints, timeout=60)
        assert body["metrics"]["orders"] == 2 and body["metrics"]["revenue"] == 50.5
        assert body["rfm"]["frequency"] == 2 and body["rfm"]["monetary"] == 50.5
        assert body["channels"]["web"]["count"] == 3
        by_anon = await client.get(f"/v1/customers?anonymous_id=a-{customer}", headers=AGENT)
        assert by_anon.json()["customer_id"] == customer
        timeline = (await client.get(f"/v1/customers/{customer}/timeline",
                                     headers=AGENT)).json()["touchpoints"]
        assert [t["message_id"] for t in timeline] == [f"{customer}-{i}" for i in (2, 1, 0)]
        assert (await client.get("/v1/customers/nobody-here", headers=AGENT)).status_code == 404
        assert (await client.get(f"/v1/customers/{customer}")).status_code == 401
        assert (await client.get(f"/v1/customers/{customer}",
                                 headers={"Authorization": "Bearer dev-channel"})
                ).status_code == 403
        assert (await client.get("/readyz")).status_code == 200

    updates = await read_since(stack.kafka_bootstrap, topics.PROFILE_UPDATES, updates_since,
                               until=lambda rs: sum(r.key == customer.encode() for r in rs) >= 3)
    latest = [CustomerProfile.from_bytes(r.value) for r in updates if r.key == customer.encode()]
    assert latest[-1].metrics.touchpoints == 3


async def test_a_redelivered_record_is_applied_once(stack, producer):
    redis = redis_store.connect(redis_url(stack, 1))
    store = ProfileStore(redis, group=f"it-redeliver-{uuid.uuid4().hex[:6]}")
    customer = f"it-{uuid.uuid4().hex[:8]}"
    tp = touchpoint(customer, 0, properties={"total": 10.0})
    try:
        for _ in range(3):  # the same record, as after a crash before the commit
            await ProfileProcessor(store, producer).handle(
                tp.to_bytes(), topic=topics.TOUCHPOINTS.name, partition=5, offset=1000)
        again = touchpoint(customer, 1, properties={"total": 5.0})
        await ProfileProcessor(store, producer).handle(
            again.to_bytes(), topic=topics.TOUCHPOINTS.name, partition=5, offset=1001)
        profile = await store.load(customer)
        assert profile is not None
        assert (profile.metrics.orders, profile.metrics.revenue) == (2, 15.0)
    finally:
        await redis.aclose()
