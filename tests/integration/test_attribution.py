"""Attribution through the real next-action service, Kafka and Redis: orders (and a
refund) published as order facts count as the response to the customer's most recent
decision within the window, once however often they are delivered, for offers made,
offers held out and control decisions alike; each window closes once, is learnt from
once (also by a second service instance reading the same topics again), and the uplift
report gives the counts."""

import asyncio
import uuid
from datetime import UTC, datetime, timedelta

import pytest

from rapport.next_action.app import build as build_next_action
from rapport.next_action.settings import NextActionSettings
from rapport.shared import keys, redis_store, topics
from rapport.shared.events import OrderFact
from rapport.shared.kafka import durable_producer
from rapport.shared.layout import ProfileLayout
from rapport.shared.profiles import CustomerProfile, Metrics
from tests.conftest import redis_url
from tests.helpers import caught_up, eventually, serving

ADMIN = {"Authorization": "Bearer dev-admin"}
OPS = {"Authorization": "Bearer dev-ops"}
CHANNEL = {"Authorization": "Bearer dev-channel"}
DB = 14
WINDOW_S = 4.0


def settings_for(stack, group: str) -> NextActionSettings:
    return NextActionSettings(
        kafka_bootstrap=stack.kafka_bootstrap, redis_url=redis_url(stack, DB), dev_keys=True,
        learner_group_id=f"{group}-learner", attribution_group_id=f"{group}-attribution",
        attribution_window_s=WINDOW_S, attribution_grace_s=5.0,
        attribution_close_interval_s=0.2, cache_s=0)


async def customers(stack, n: int) -> list[str]:
    redis = redis_store.connect(redis_url(stack, DB))
    out = []
    for _ in range(n):
        pid = f"at-{uuid.uuid4().hex[:10]}"
        await redis.set(ProfileLayout().profile(pid), CustomerProfile(
            customer_id=pid, metrics=Metrics(orders=2, revenue=80)).to_stored())
        out.append(pid)
    await redis.aclose()
    return out


async def report(client) -> dict:
    r = await client.get("/v1/reports/uplift", headers=OPS)
    assert r.status_code == 200, r.text
    return r.json()


@pytest.fixture
async def redis(stack):
    r = redis_store.connect(redis_url(stack, DB))
    await r.flushdb()
    yield r
    await r.aclose()


async def test_orders_count_once_toward_the_most_recent_decision_in_the_window(stack, redis):
    await asyncio.sleep(WINDOW_S + 5.5)  # other tests' decisions are past their windows
    group = f"it-attr-{uuid.uuid4().hex[:6]}"
    settings = settings_for(stack, group)
    fp = settings.fingerprints()
    producer = durable_producer(stack.kafka_bootstrap, client_id="it-attribution")
    await producer.start()
    try:
        async with serving(build_next_action(settings)) as client:
            assert (await client.put("/v1/offers", headers=ADMIN, json=[
                {"offer_id": "d20", "name": "20% off", "channels": ["web"], "value": 10,
                 "cost": 0.5}])).status_code == 200
            assert (await client.put("/v1/policies", headers=ADMIN, json={
                "control_share": 0.3, "policies": [{"policy_id": "u", "share": 0.7,
                                                    "epsilon": 0.0, "holdout_share": 0.4}]}
                                     )).status_code == 200
            # the group has joined and read the topics' backlog (other tests' decisions and
            # orders, and a fact of nobody's sent now, so there is something to read)
            await (await producer.send(topics.ORDER_FACTS.name, OrderFact(
                kind="order", customer="nobody", message_id=f"m-{group}",
                occurred_at=datetime.now(UTC), revenue=1.0).to_bytes(), key=b"nobody"))
            await eventually(lambda: caught_up(stack.kafka_bootstrap, f"{group}-attribution",
                                               [topics.DECISIONS.name, topics.ORDER_FACTS.name]),
                             timeout=120, interval=1)
            people = await customers(stack, 40)
            decided = {}
            for pid in people:
                r = await client.post("/v1/next-best-action", headers=CHANNEL,
                                      json={"customer_id": pid, "channel": "web"})
                assert r.status_code == 200, r.text
                decided[pid] = r.json()
            at = datetime.now(UTC)
            groups = {pid: ("control" if d["group"] == "control" else
                            "treated" if d["actions"] else "held_out")
                      for pid, d in decided.items()}
            assert set(groups.values()) == {"control", "treated", "held_out"}
            buyers = people[::2]
            sends = []
            for i, pid in enumerate(buyers):
                f = OrderFact(kind="order", customer=fp.profile(pid), message_id=f"m-{pid}",
                              order_id=f"o-{pid}", occurred_at=at + timedelta(seconds=0.5),
                              revenue=100.0)
                for _ in range(2 if i % 3 == 0 else 1):  # some delivered twice
                    sends.append(await producer.send(topics.ORDER_FACTS.name, f.to_bytes(),
                                                     key=f.customer.encode()))
            refunded = buyers[0]
            sends.append(await producer.send(topics.ORDER_FACTS.name, OrderFact(
                kind="refund", customer=fp.profile(refunded), message_id=f"r-{refunded}",
                order_id=f"o-{refunded}", occurred_at=at + timedelta(seconds=1),
                revenue=50.0).to_bytes(), key=fp.profile(refunded).encode()))
            # before any decision of theirs: no decision to respond to
            sends.append(await producer.send(topics.ORDER_FACTS.name, OrderFact(
                kind="order", customer=fp.profile(people[1]), message_id="early",
                occurred_at=at - timedelta(hours=1), revenue=999.0).to_bytes(),
                key=fp.profile(people[1]).encode()))
            for s in sends:
                await s

            ids = [d["decision_id"] for d in decided.values()]

            async def closed():  # every window of ours learnt from (markers), then the report
                seen = await redis.exists(*(keys.response_seen(i) for i in ids))
                return (await report(client)) if seen == len(ids) else None

            out = await eventually(closed, timeout=150)
        expected = {"treatment": [p for p in people if groups[p] != "control"],
                    "control": [p for p in people if groups[p] == "control"]}
        for arm, members in expected.items():
            bought = [p for p in members if p in buyers]
            assert out["overall"][arm]["decisions"] == len(members)
            assert out["overall"][arm]["buyers"] == len(bought)
            margin = 30.0 * len(bought) - (15.0 if refunded in bought else 0.0)
            assert out["overall"][arm]["margin"] == pytest.approx(margin)
        d20 = out["offers"][0]
        assert d20["offer_id"] == "d20"
        for arm in ("treated", "held_out"):
            members = [p for p in people if groups[p] == arm]
            assert d20[arm]["decisions"] == len(members)
            assert d20[arm]["buyers"] == len([p for p in members if p in buyers])
        assert d20["treated"]["profit_per_decision"] == pytest.approx(
            (sum(30.0 for p in people if groups[p] == "treated" and p in buyers)
             - (15.0 if groups[refunded] == "treated" else 0.0)) /
            d20["treated"]["decisions"] - 0.5)
        version = int(await redis.hget(keys.uplift_model("two_model"), "version"))
        assert version == len(people)

        # a second instance replaying both topics from the start (a new group) learns
        # nothing twice and counts nothing twice
        again = settings_for(stack, group + "-again")
        async with serving(build_next_action(again)) as client2:
            async def replayed():
                lag = await redis.zcard(keys.attribution_open())
                return (await report(client2)) if lag == 0 else None
            await eventually(replayed, timeout=30)
            await asyncio.sleep(WINDOW_S + 2)
            out2 = await report(client2)
        assert out2["overall"] == out["overall"]
        assert int(await redis.hget(keys.uplift_model("two_model"), "version")) == version
    finally:
        await producer.stop()
