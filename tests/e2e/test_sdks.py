"""The official Segment and RudderStack Python SDKs, pointed at ingest and
changing nothing else, deliver thousands of events of every type into Kafka
exactly once and unchanged in meaning (gzip and plain JSON alike)."""

import uuid
from datetime import UTC, datetime, timedelta

import pytest
import rudderstack.analytics.client as rudder
import segment.analytics.client as segment

from rapport.shared import topics
from tests.helpers import end_offsets, open_touchpoints, read_between

EVENTS_PER_SDK = 1800


def send_everything(client, run: str) -> dict[str, dict]:
    """Every message type through the SDK; returns what was sent by message id."""
    sent: dict[str, dict] = {}
    t0 = datetime.now(UTC) - timedelta(days=3)
    for i in range(EVENTS_PER_SDK // 6):
        user, anon = f"{run}-u{i % 97}", f"{run}-a{i % 89}"
        at = t0 + timedelta(seconds=i)
        calls = {
            "track": lambda m: client.track(user, "Order Completed", {
                "order_id": f"o{i}", "total": i + 0.5, "products": [
                    {"product_id": "p1", "category": "shoes", "price": 20.0, "quantity": 2}]},
                context={"channel": "store"}, timestamp=at, message_id=m),
            "identify": lambda m: client.identify(user, {"email": f"{user}@example.com",
                                                         "consent": {"marketing_email": True}},
                                                  anonymous_id=anon, timestamp=at, message_id=m),
            "page": lambda m: client.page(anonymous_id=anon, category="Shop", name="Home",
                                          properties={"path": "/"}, timestamp=at, message_id=m),
            "screen": lambda m: client.screen(user, name="Cart", properties={"items": 2},
                                              context={"channel": "mobile"}, timestamp=at,
                                              message_id=m),
            "group": lambda m: client.group(user, f"household-{i % 13}", {"size": 3},
                                            timestamp=at, message_id=m),
            "alias": lambda m: client.alias(anon, user, timestamp=at, message_id=m),
        }
        for kind, call in calls.items():
            message_id = f"{run}-{kind}-{i}"
            call(message_id)
            sent[message_id] = {"type": kind, "user": user, "anon": anon, "at": at, "i": i}
    client.flush()
    return sent


@pytest.mark.parametrize(("sdk", "gzip"), [(segment, True), (segment, False), (rudder, True)])
async def test_sdk_delivers_every_event_exactly_once(system, sdk, gzip):
    run = uuid.uuid4().hex[:8]
    errors: list[str] = []
    client = sdk.Client("dev-write-key", host=system.url("ingest"), gzip=gzip,
                        on_error=lambda e, batch: errors.append(repr(e)), max_retries=5)
    since = await end_offsets(system.kafka_bootstrap, topics.TOUCHPOINTS)
    sent = send_everything(client, run)
    client.shutdown()
    assert errors == []
    until = await end_offsets(system.kafka_bootstrap, topics.TOUCHPOINTS)
    records = await read_between(system.kafka_bootstrap, topics.TOUCHPOINTS, since, until)
    got = await open_touchpoints(system.redis_url, [r.value for r in records])
    mine = [tp for tp in got if tp.message_id.startswith(run)]
    assert len(mine) == len(sent) == EVENTS_PER_SDK          # nothing lost or doubled
    assert {tp.message_id for tp in mine} == set(sent)

    for tp in mine:
        want = sent[tp.message_id]
        assert tp.type == want["type"] and tp.source == "dev"
        assert abs(tp.timestamp - want["at"]) < timedelta(seconds=5)   # skew-corrected
        match want["type"]:
            case "track":
                assert tp.event == "Order Completed" and tp.channel == "store"
                assert tp.properties["total"] == want["i"] + 0.5
                assert tp.properties["products"][0]["quantity"] == 2
                assert tp.user_id == want["user"]
            case "identify":
                assert tp.traits == {"email": f"{want['user']}@example.com",
                                     "consent": {"marketing_email": True}}
                assert (tp.user_id, tp.anonymous_id) == (want["user"], want["anon"])
            case "page":
                assert tp.name == "Home" and tp.anonymous_id == want["anon"]
                assert tp.category == "Shop"
                assert tp.channel == "web" and tp.properties["path"] == "/"
            case "screen":
                assert tp.name == "Cart" and tp.channel == "mobile"
            case "group":
                assert tp.group_id == f"household-{want['i'] % 13}" and tp.traits == {"size": 3}
            case "alias":
                assert (tp.previous_id, tp.user_id) == (want["anon"], want["user"])
