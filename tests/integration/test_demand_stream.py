"""Demand against the real Kafka and Redis: ecommerce touchpoints over several event-time
buckets with a surge in one category, resent messages, a late event and a full
redelivery after a restart. Bucket counts stay exact, the surge opens one alert on
``rapport.demand-alerts.v1`` and in ``GET /v1/demand/spikes``, and its audience ranks
the customers with that category's affinity first."""

from __future__ import annotations

import asyncio
import contextlib
import uuid
from datetime import UTC, datetime, timedelta

import orjson
import pytest
from aiokafka import AIOKafkaConsumer, TopicPartition
from aiokafka.admin import AIOKafkaAdminClient
from aiokafka.errors import KafkaError
from aiokafka.structs import OffsetAndMetadata

from rapport.profile.app import build
from rapport.profile.settings import ProfileSettings
from rapport.profile.streams import PROCESSED, partition_of
from rapport.shared import keys, redis_store, topics
from rapport.shared.events import Channel, MessageType, Touchpoint
from rapport.shared.kafka import durable_producer, ensure_topics
from rapport.shared.topics import TopicSpec
from tests.conftest import redis_url
from tests.demand_fakes import threshold_detectors
from tests.helpers import end_offsets, eventually, facts_of, read_since, serving

CLUSTER = True  # run on the single Redis and on the local Redis Cluster

OPS = {"Authorization": "Bearer dev-ops"}
AGENT = {"Authorization": "Bearer dev-agent"}
PARTITIONS = 4
W = 300
LATENESS = 3600
NOW = datetime.now(UTC)
T = datetime.fromtimestamp((int(NOW.timestamp()) // 3600) * 3600, UTC) - timedelta(days=2)
SURGE = (8, 9, 10)


def customers(run: str) -> tuple[list[str], list[str]]:
    """Four fans of shoes (one per partition) and twelve others (three per partition)."""
    by_partition: dict[int, list[str]] = {p: [] for p in range(PARTITIONS)}
    i = 0
    while any(len(v) < 4 for v in by_partition.values()):
        pid = f"{run}-c{i}"
        i += 1
        if len(by_partition[partition_of(pid, PARTITIONS)]) < 4:
            by_partition[partition_of(pid, PARTITIONS)].append(pid)
    fans = [v[0] for v in by_partition.values()]
    others = [pid for v in by_partition.values() for pid in v[1:]]
    return fans, others


class Events:
    def __init__(self, run: str) -> None:
        self.run = run
        self.n = 0

    def __call__(self, user: str, bucket: int, event: str, second: int = 0,
                 **props) -> Touchpoint:
        self.n += 1
        return Touchpoint(
            message_id=f"{self.run}-{self.n}", source="it", type=MessageType.TRACK,
            event=event, user_id=user, channel=Channel.WEB, received_at=NOW,
            timestamp=T + timedelta(seconds=bucket * W + second),
            properties=props, context={"location": {"region": "west"}})


def view(e: Events, user: str, bucket: int, category: str, product: str,
         second: int = 0) -> Touchpoint:
    return e(user, bucket, "Product Viewed", second, product_id=product, category=category,
             price=20.0)


def order(e: Events, user: str, bucket: int, category: str, product: str,
          second: int = 0) -> Touchpoint:
    return e(user, bucket, "Order Completed", second, order_id=f"{e.run}-o{e.n}", total=50.0,
             products=[{"product_id": product, "category": category, "price": 50.0,
                        "quantity": 1}])


def history(run: str) -> tuple[list[Touchpoint], list[str], list[str]]:
    """Buckets 0-7 steady, 8-10 a surge of shoe orders; every message of the surge's
    first order is also resent twice (it reaches Kafka three times)."""
    fans, others = customers(run)
    e = Events(run)
    out: list[Touchpoint] = []
    for b in range(11):
        for k, user in enumerate(fans + others):
            out.append(view(e, user, b, "hats", f"h{(b + k) % 3}", second=k))
        for k, fan in enumerate(fans):
            out.append(view(e, fan, b, "shoes", "s1", second=20 + k))
        for k in range(2):
            out.append(order(e, others[(2 * b + k) % len(others)], b, "bags", "b1", 40 + k))
        if b not in SURGE:
            out.append(order(e, fans[b % len(fans)], b, "shoes", "s1", second=60))
        else:
            buyers = fans + [others[(6 * b + j) % len(others)] for j in range(6)]
            for k, buyer in enumerate(buyers):
                out.append(order(e, buyer, b, "shoes", "s1", second=100 + k))
    first_surge = next(t for t in out if t.event == "Order Completed"
                       and t.timestamp >= T + timedelta(seconds=SURGE[0] * W)
                       and t.properties["products"][0]["category"] == "shoes")
    return [*out, first_surge, first_surge], fans, others


async def publish(producer, topic: str, events: list[Touchpoint]) -> None:
    futures = [await producer.send(topic, t.to_bytes(), key=t.customer_key.encode())
               for t in events]
    await asyncio.gather(*futures)


async def series(client, dimension: str, value: str, metric: str,
                 resolution: str = "5m") -> dict[int, float]:
    resp = await client.get("/v1/demand/series", headers=OPS, params={
        "dimension": dimension, "value": value, "metric": metric, "resolution": resolution,
        "limit": 100})
    assert resp.status_code == 200, resp.text
    t0 = T.timestamp()
    return {int((datetime.fromisoformat(b["start"]).timestamp() - t0) // W): b["value"]
            for b in resp.json()["buckets"] if b["value"]}


async def status(client) -> dict:
    resp = await client.get("/v1/demand/status", headers=OPS)
    assert resp.status_code == 200, resp.text
    return resp.json()


async def closed_through(client, bucket: int) -> dict:
    """Wait until the closer closed every bucket up to ``bucket`` (inclusive)."""
    want = (T + timedelta(seconds=(bucket + 1) * W)).isoformat()

    async def check():
        body = await status(client)
        return body if body["closed_through"] == want else None
    return await eventually(check, timeout=90, interval=0.3)


async def rewind(bootstrap: str, group: str, names: list[str]) -> None:
    """Every partition of these topics back to its start: the whole stream comes again,
    as after a crash before any Kafka commit (retried until the stopped worker left)."""
    consumer = AIOKafkaConsumer(bootstrap_servers=bootstrap, group_id=group,
                                enable_auto_commit=False)
    await consumer.start()
    try:
        parts = [TopicPartition(n, p) for n in names for p in range(PARTITIONS)]
        starts = await consumer.beginning_offsets(parts)
        consumer.assign(parts)

        async def committed() -> bool:
            try:
                await consumer.commit({tp: OffsetAndMetadata(o, "")
                                       for tp, o in starts.items()})
                return True
            except KafkaError:
                return False
        await eventually(committed, timeout=60, interval=1.0)
    finally:
        await consumer.stop()


async def group_caught_up(bootstrap: str, group: str, names: list[str]) -> None:
    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap)
    consumer = AIOKafkaConsumer(bootstrap_servers=bootstrap)
    await admin.start()
    await consumer.start()
    try:
        parts = [TopicPartition(n, p) for n in names for p in range(PARTITIONS)]
        streak = 0

        async def check() -> bool:
            nonlocal streak
            committed = {tp: m.offset for tp, m in
                         (await admin.list_consumer_group_offsets(group)).items()}
            ends = await consumer.end_offsets(parts)
            streak = streak + 1 if all(committed.get(tp, -1) >= e for tp, e in ends.items()) \
                else 0
            return streak >= 2
        await eventually(check, timeout=90, interval=1.0)
    finally:
        await consumer.stop()
        await admin.close()


async def demand_settings(stack, tmp_path_factory, *, run: str, db: int, group: str,
                          target=None,
                          forecast_s: int, lateness_s: int = LATENESS,
                          ) -> tuple[ProfileSettings, TopicSpec]:
    """A profile worker's settings on this run's own topics, closing buckets quickly."""
    touchpoints = TopicSpec(f"it.touchpoints.{run}", partitions=PARTITIONS)
    resolved = TopicSpec(f"it.resolved.{run}", partitions=PARTITIONS)
    await ensure_topics(stack.kafka_bootstrap, [touchpoints, resolved, facts_of(resolved)])
    settings = ProfileSettings(
        kafka_bootstrap=stack.kafka_bootstrap, dev_keys=True,
        redis_url=target.url(db) if target else redis_url(stack, db),
        profile_group_id=f"{group}-{run}", touchpoints_topic=touchpoints.name,
        resolved_topic=resolved.name, demand_facts_topic=facts_of(resolved).name,
        profile_data_dir=tmp_path_factory.mktemp("demand"),
        demand_bucket_s=W, demand_lateness_s=lateness_s, demand_idle_s=3600,
        demand_close_interval_s=0.3, demand_forecast_s=forecast_s)
    return settings, touchpoints


@pytest.fixture(scope="module")
async def demand(stack, tmp_path_factory, redis_target):
    run = uuid.uuid4().hex[:6]
    settings, touchpoints = await demand_settings(stack, tmp_path_factory, run=run, db=6,
                                                  target=redis_target, group="it-demand",
                                                  forecast_s=3600)
    redis = redis_store.connect(settings.redis_url)
    await redis.flushdb()
    producer = durable_producer(stack.kafka_bootstrap, client_id="it-demand")
    await producer.start()
    alerts_since = await end_offsets(stack.kafka_bootstrap, topics.DEMAND_ALERTS)
    events, fans, others = history(run)
    state = {"run": run, "settings": settings, "redis": redis, "producer": producer,
             "fans": fans, "others": others, "events": events, "alerts_since": alerts_since}
    app = build(settings, detectors=threshold_detectors(warmup=3, ratio=3.0))
    running = contextlib.AsyncExitStack()
    async with running:
        client = await running.enter_async_context(serving(app))
        state["client"], state["stop"] = client, running.aclose
        await publish(producer, touchpoints.name, events)
        # Every message of the history is folded before anything later comes ...
        await eventually(lambda: _totals_are(client, "hats", "views", 16 * 11), timeout=90)
        # ... then each partition's clock moves on so that buckets up to 9 close (not 10).
        e = Events(run + "-clock")
        clock = [view(e, user, 0, "hats", "h0", second=(10 + LATENESS // W) * W + 10)
                 for user in fans + others]
        await publish(producer, touchpoints.name, clock)
        await closed_through(client, 9)
        yield state
    await producer.stop()
    await redis.aclose()


async def _totals_are(client, category: str, metric: str, want: float) -> bool:
    got = await series(client, "category", category, metric, resolution="1h")
    return sum(got.values()) == want


async def test_bucket_counts_are_exact_with_resends_and_roll_up(demand):
    client = demand["client"]
    shoes = await series(client, "category", "shoes", "orders")
    assert shoes == {b: (10 if b in SURGE else 1) for b in range(11)}
    assert await series(client, "category", "shoes", "orders", "1h") == {0: 8 + 30}
    day = int(-(T.timestamp() % 86400) // W)  # the index of the day's start
    assert await series(client, "category", "shoes", "revenue", "1d") == {day: 38 * 50.0}
    hats = await series(client, "category", "hats", "views")
    assert hats == {**{b: 16 for b in range(11)}, 22: 16}
    total = await series(client, "total", "all", "orders")
    assert total == {b: (12 if b in SURGE else 3) for b in range(11)}
    assert await series(client, "region", "west", "views") == {
        **{b: 20 for b in range(11)}, 22: 16}
    units = await series(client, "product", "s1", "units")  # closed buckets: estimates
    assert units == {b: (10 if b in SURGE else 1) for b in range(10)}
    body = await status(client)
    assert body["late"]["events"] == 0
    assert len(body["partitions"]) == PARTITIONS


async def test_the_surge_opens_one_alert_on_kafka_and_in_the_api(stack, demand):
    client = demand["client"]
    want = {"dimension": "category", "value": "shoes", "metric": "orders"}
    records = await read_since(
        stack.kafka_bootstrap, topics.DEMAND_ALERTS, demand["alerts_since"],
        until=lambda rs: any(orjson.loads(r.value).get("spike", {}).get("series") == want
                             for r in rs))
    ours = [body for body in (orjson.loads(r.value) for r in records) if "spike" in body]
    shoes = [r for r in ours if r["spike"]["series"] == want]
    assert [r["type"] for r in shoes] == ["demand_spike_started"]
    spike = shoes[0]["spike"]
    assert spike["started_at"] == (T + timedelta(seconds=SURGE[0] * W)).isoformat()
    assert (spike["observed"], spike["expected"], spike["direction"]) == (10, 1, "up")
    assert spike["magnitude"] == 9.0
    assert any(r.key == spike["id"].encode() for r in records)

    resp = await client.get("/v1/demand/spikes", headers=OPS)
    assert resp.status_code == 200
    active = {s["id"]: s for s in resp.json()["spikes"]}
    assert spike["id"] in active
    listed = active[spike["id"]]
    assert listed["ended_at"] is None
    assert listed["latest"]["at"] == (T + timedelta(seconds=9 * W)).isoformat()
    assert len(listed["forecast"]) == 3600 // W
    assert listed["forecast"][0]["at"] == (T + timedelta(seconds=10 * W)).isoformat()
    product = [s for s in active.values()
               if s["series"] == {"dimension": "product", "value": "s1", "metric": "orders"}]
    assert product and product[0]["category"] == "shoes"
    only = await client.get("/v1/demand/spikes", headers=OPS,
                            params={"dimension": "category", "metric": "orders"})
    assert {s["series"]["value"] for s in only.json()["spikes"]} == {"shoes"}
    assert (await client.get("/v1/demand/spikes", headers=AGENT)).status_code == 403
    assert (await client.get("/v1/demand/spikes")).status_code == 401
    # the alert's forecast carries its interval
    assert all(p["lower"] <= p["expected"] <= p["upper"] for p in listed["forecast"])


async def test_a_tracked_series_forecasts_its_next_hour_and_day_with_intervals(demand):
    client = demand["client"]
    params = {"dimension": "category", "value": "shoes", "metric": "orders"}
    resp = await client.get("/v1/demand/forecast", headers=OPS, params=params)
    assert resp.status_code == 200, resp.text
    body = resp.json()
    assert body["series"] == params and body["bucket_s"] == W and body["interval"] == 0.8
    assert body["as_of"] == (T + timedelta(seconds=10 * W)).isoformat()
    hour, day = body["next_hour"], body["next_day"]
    assert [p["start"] for p in hour["points"]] == [
        (T + timedelta(seconds=(10 + k) * W)).isoformat() for k in range(3600 // W)]
    assert len(day["points"]) == 24 and day["resolution"] == "3600s"
    for part in (hour, day):
        assert part["lower"] <= part["expected"] <= part["upper"]
        assert all(p["lower"] <= p["expected"] <= p["upper"] for p in part["points"])
    assert day["expected"] == pytest.approx(sum(p["expected"] for p in day["points"]), abs=0.1)
    assert set(body["quality"]) == {"next_hour", "next_day", "zero_share"}
    assert 0.0 <= body["quality"]["zero_share"] <= 1.0

    quality = (await client.get("/v1/demand/forecasts/quality", headers=OPS)).json()
    assert quality["series"] >= 1 and set(quality) >= {"next_hour", "next_day"}
    assert set(quality["next_day"]) >= {"smooth", "intermittent"}

    unknown = await client.get("/v1/demand/forecast", headers=OPS,
                               params={**params, "value": "no-such-category"})
    assert unknown.status_code == 404 and unknown.json()["code"] == "unknown_series"
    missing = await client.get("/v1/demand/forecast", headers=OPS,
                               params={"dimension": "region", "metric": "views"})
    assert missing.status_code == 400 and missing.json()["code"] == "missing_value"
    bad = await client.get("/v1/demand/forecast", headers=OPS,
                           params={**params, "metric": "hugs"})
    assert bad.status_code == 422 and set(bad.json()) >= {"code", "message"}
    assert (await client.get("/v1/demand/forecast", headers=AGENT,
                             params=params)).status_code == 403


async def test_the_audience_of_the_spike_ranks_its_fans_first(demand):
    client = demand["client"]
    spikes = (await client.get("/v1/demand/spikes", headers=OPS)).json()["spikes"]
    for series in ({"dimension": "category", "value": "shoes", "metric": "orders"},
                   {"dimension": "product", "value": "s1", "metric": "orders"}):
        spike = next(s for s in spikes if s["series"] == series)
        resp = await client.get(f"/v1/demand/spikes/{spike['id']}/audience", headers=OPS,
                                params={"limit": 10})
        assert resp.status_code == 200, resp.text
        body = resp.json()
        assert body["category"] == "shoes"
        ranked = [c["customer_id"] for c in body["customers"]]
        assert set(ranked[:4]) == set(demand["fans"]), body
        assert len(ranked) == 10 and set(ranked[4:]) <= set(demand["others"])
        affinities = [c["affinity"] for c in body["customers"]]
        assert affinities == sorted(affinities, reverse=True)
        assert body["segments"][0]["segment"] == "buyers"
    missing = await client.get("/v1/demand/spikes/ffffffffffffffff/audience", headers=OPS)
    assert missing.status_code == 404 and "no demand spike" in missing.json()["message"]


@pytest.mark.parametrize("params", [
    {"dimension": "planet", "metric": "orders"},
    {"dimension": "category", "metric": "orders"},
    {"dimension": "category", "value": "shoes", "metric": "hugs"},
    {"dimension": "category", "value": "shoes", "metric": "orders", "resolution": "7m"},
    {"dimension": "category", "value": "shoes", "metric": "orders", "limit": 0},
    {"dimension": "category", "value": "x" * 300, "metric": "orders"},
])
async def test_bad_series_queries_are_refused(demand, params):
    resp = await demand["client"].get("/v1/demand/series", headers=OPS, params=params)
    assert resp.status_code in (400, 422), resp.text
    assert resp.json()["message"]


async def test_heavy_products(demand):
    client = demand["client"]
    resp = await client.get("/v1/demand/top", headers=OPS,
                            params={"metric": "orders", "resolution": "1h", "limit": 2})
    assert resp.status_code == 200, resp.text
    products = resp.json()["products"]
    assert [(p["product_id"], p["category"], p["estimate"]) for p in products] == [
        ("s1", "shoes", 8 + 20), ("b1", "bags", 20)]  # buckets 0-9 are closed
    for bad in ({"metric": "searches"}, {"metric": "orders", "resolution": "5m"},
                {"metric": "nope"}):
        assert (await client.get("/v1/demand/top", headers=OPS, params=bad)).status_code \
            in (400, 422)


async def test_late_events_are_counted_as_late_and_a_redelivery_counts_nothing_twice(
        demand):
    client, settings, redis = demand["client"], demand["settings"], demand["redis"]
    before = await series(client, "category", "hats", "views")
    e = Events(demand["run"] + "-late")
    await publish(demand["producer"], settings.touchpoints_topic,
                  [view(e, demand["fans"][0], 1, "hats", "h1")])

    async def late_counted():
        return (await status(client))["late"]["events"] == 1
    await eventually(late_counted, timeout=60)
    assert await series(client, "category", "hats", "views") == before
    assert (await status(client))["late"]["views"] == 1

    # Stop the worker, rewind its group to the start of both topics and start again:
    # everything is delivered a second time and recognised by its stored offset.
    shoes = await series(client, "category", "shoes", "orders")
    detectors = await redis.hgetall(keys.demand_detectors())
    open_alerts = await redis.hgetall(keys.demand_alerts())
    open_incidents = await redis.hgetall(keys.demand_incidents())
    assert open_incidents  # the surge's
    redelivered = PROCESSED.labels("fold", "redelivered")._value.get()
    names = [settings.touchpoints_topic, settings.resolved_topic]
    await demand["stop"]()
    await rewind(settings.kafka_bootstrap, settings.profile_group_id, names)
    # Demand's own group too: every fact is read again, and counted no second time.
    await rewind(settings.kafka_bootstrap, f"{settings.profile_group_id}-demand",
                 [settings.demand_facts_topic])
    app = build(settings, detectors=threshold_detectors(warmup=3, ratio=3.0))
    async with serving(app) as again:
        await group_caught_up(settings.kafka_bootstrap, settings.profile_group_id, names)
        assert PROCESSED.labels("fold", "redelivered")._value.get() > redelivered
        assert await series(again, "category", "hats", "views") == before
        assert await series(again, "category", "shoes", "orders") == shoes
        body = await status(again)
        assert body["late"]["events"] == 1
        assert body["closed_through"] == (T + timedelta(seconds=10 * W)).isoformat()
        assert await redis.hgetall(keys.demand_detectors()) == detectors
        assert await redis.hgetall(keys.demand_alerts()) == open_alerts
        assert await redis.hgetall(keys.demand_incidents()) == open_incidents
