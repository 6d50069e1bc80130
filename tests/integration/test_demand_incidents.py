"""Incidents and audiences against the real Kafka and Redis (DB 15): the surge of
``test_demand_stream`` (shoe orders, which move the category, its product, the total,
the region, the channel and the buyers' segment in the same buckets) opens ONE incident
with all those alerts as members, on the alerts topic and in
``GET /v1/demand/incidents``; a region spike's audience lists the customers of that
region (not those seen elsewhere), ranked by their scores; an erased customer leaves
every such audience."""

from __future__ import annotations

import contextlib
import uuid
from datetime import datetime, timedelta

import orjson
import pytest

from rapport.profile.app import build
from rapport.shared import keys, redis_store, topics
from rapport.shared.kafka import durable_producer
from tests.demand_fakes import threshold_detectors
from tests.helpers import end_offsets, eventually, read_since, serving
from tests.integration.test_demand_stream import (
    LATENESS,
    OPS,
    SURGE,
    Events,
    T,
    W,
    _totals_are,
    closed_through,
    demand_settings,
    history,
    publish,
    view,
)

DB = 15
ADMIN = {"Authorization": "Bearer dev-admin"}
AGENT = {"Authorization": "Bearer dev-agent"}
EAST = {"location": {"region": "east"}}


def elsewhere(e: Events, user: str, bucket: int):
    """A view from the east: that customer is no customer of the west."""
    tp = view(e, user, bucket, "hats", "h0", second=200)
    return tp.model_copy(update={"context": EAST})


@pytest.fixture(scope="module")
async def surge(stack, tmp_path_factory):
    run = uuid.uuid4().hex[:6]
    settings, touchpoints = await demand_settings(stack, tmp_path_factory, run=run, db=DB,
                                                  group="it-incidents", forecast_s=1800)
    redis = redis_store.connect(settings.redis_url)
    await redis.flushdb()
    producer = durable_producer(stack.kafka_bootstrap, client_id="it-incidents")
    await producer.start()
    alerts_since = await end_offsets(stack.kafka_bootstrap, topics.DEMAND_ALERTS)
    events, fans, others = history(run)
    e = Events(run + "-east")
    east = [f"{run}-east{i}" for i in range(3)]
    browsers = [f"{run}-browser{i}" for i in range(2)]  # the west, never bought
    events += [elsewhere(e, user, b) for b in range(11) for user in east]
    events += [view(e, user, b, "hats", "h1", second=210) for b in range(11)
               for user in browsers]
    state = {"redis": redis, "fans": fans, "others": others, "east": east,
             "browsers": browsers, "alerts_since": alerts_since}
    app = build(settings, detectors=threshold_detectors(warmup=3, ratio=3.0))
    async with contextlib.AsyncExitStack() as running:
        client = await running.enter_async_context(serving(app))
        state["client"] = client
        await publish(producer, touchpoints.name, events)
        everyone = fans + others + east + browsers
        await eventually(lambda: _totals_are(client, "hats", "views", len(everyone) * 11),
                         timeout=90)
        clock = Events(run + "-clock")
        ticks = {user: view(clock, user, 0, "hats", "h0", second=(10 + LATENESS // W) * W + 10)
                 for user in everyone}  # every upstream partition's clock moves on
        await publish(producer, touchpoints.name, [
            tick.model_copy(update={"context": EAST}) if user in east else tick
            for user, tick in ticks.items()])
        await closed_through(client, 9)
        yield state
    await producer.stop()
    await redis.aclose()


def _at(text: str) -> datetime:
    return datetime.fromisoformat(text)


async def _spikes(client) -> list[dict]:
    resp = await client.get("/v1/demand/spikes", headers=OPS)
    assert resp.status_code == 200, resp.text
    return resp.json()["spikes"]


async def test_one_surge_opens_one_incident_with_its_members(stack, surge):
    client = surge["client"]
    started = (T + timedelta(seconds=SURGE[0] * W)).isoformat()
    spikes = await _spikes(client)
    ours = [s for s in spikes if s["started_at"] == started]
    dims = {(s["series"]["dimension"], s["series"]["value"]) for s in ours}
    assert {("category", "shoes"), ("product", "s1"), ("total", "all"),
            ("region", "west")} <= dims, dims
    assert all(s["incident_id"] for s in spikes)
    (iid,) = {s["incident_id"] for s in ours}  # one incident for the whole surge

    resp = await client.get("/v1/demand/incidents", headers=OPS)
    assert resp.status_code == 200, resp.text
    listed = {i["id"]: i for i in resp.json()["incidents"]}
    incident = listed[iid]
    members = {m["id"]: m for m in incident["members"]}
    assert {s["id"] for s in ours} <= members.keys()
    # Besides: only broad series (no category) that moved within the window of it (the
    # buyers' segments grow through the history; one may cross a bucket earlier).
    window = timedelta(seconds=3 * W)
    for extra in members.keys() - {s["id"] for s in ours}:
        m = members[extra]
        assert "category" not in m and m["series"]["dimension"] != "product", m
        assert abs(T + timedelta(seconds=SURGE[0] * W) - _at(m["started_at"])) <= window
    assert incident["size"] == len(members) >= 4
    assert incident["category"] == "shoes" and incident["direction"] == "up"
    assert incident["started_at"] <= started and incident["ended_at"] is None
    assert incident["lead"]["series"]["dimension"] == "category"
    assert incident["lead"]["series"]["value"] == "shoes"
    assert abs(incident["peak_magnitude"]) == max(abs(m["magnitude"])
                                                  for m in incident["members"])
    shoes = [i for i in listed.values() if i.get("category") == "shoes"]
    assert len(shoes) == 1

    one = await client.get(f"/v1/demand/incidents/{iid}", headers=OPS)
    assert one.status_code == 200 and one.json()["active"] is True
    assert one.json()["members"] == incident["members"]
    up = await client.get("/v1/demand/incidents", headers=OPS,
                          params={"direction": "up", "category": "shoes", "sort": "largest"})
    assert [i["id"] for i in up.json()["incidents"]] == [iid]

    records = await read_since(
        stack.kafka_bootstrap, topics.DEMAND_ALERTS, surge["alerts_since"],
        until=lambda rs: any(r.key == iid.encode() for r in rs))
    mine = [orjson.loads(r.value) for r in records if r.key == iid.encode()]
    types = [r["type"] for r in mine]
    assert types[0] == "demand_incident_started", types
    assert set(types[1:]) <= {"demand_incident_updated"}
    assert {m["id"] for m in mine[-1]["incident"]["members"]} == members.keys()
    spike_records = [orjson.loads(r.value) for r in records
                     if r.key in {s["id"].encode() for s in ours}]
    assert {r["spike"]["incident_id"] for r in spike_records} == {iid}


@pytest.mark.parametrize("params", [
    {"sort": "oldest"}, {"direction": "sideways"}, {"limit": "0"}, {"limit": "many"},
    {"limit": "1001"}, {"category": "x" * 300}])
async def test_bad_incident_queries_are_400(surge, params):
    resp = await surge["client"].get("/v1/demand/incidents", headers=OPS, params=params)
    assert resp.status_code == 400, resp.text
    assert set(resp.json()) >= {"code", "message"}


async def test_unknown_incidents_and_roles(surge):
    client = surge["client"]
    missing = await client.get("/v1/demand/incidents/ffffffffffffffff", headers=OPS)
    assert missing.status_code == 404 and missing.json()["code"]
    assert (await client.get("/v1/demand/incidents/not-an-id!", headers=OPS)).status_code \
        == 400
    assert (await client.get("/v1/demand/incidents", headers=AGENT)).status_code == 403
    assert (await client.get("/v1/demand/incidents")).status_code == 401


async def _audience(client, series: dict) -> dict:
    spike = next(s for s in await _spikes(client) if s["series"] == series)
    resp = await client.get(f"/v1/demand/spikes/{spike['id']}/audience", headers=OPS,
                            params={"limit": 100})
    assert resp.status_code == 200, resp.text
    body = resp.json()
    assert body["incident_id"] == spike["incident_id"]
    return body


async def test_a_region_spike_answers_with_the_customers_of_that_region(surge):
    body = await _audience(surge["client"],
                           {"dimension": "region", "value": "west", "metric": "orders"})
    assert body["reach"] == "region:west" and "expected value" in body["basis"]
    ranked = [c["customer_id"] for c in body["customers"]]
    west = set(surge["fans"] + surge["others"] + surge["browsers"])
    assert set(ranked) == west, body  # nobody seen only in the east
    values = [c["expected_value_90d"] for c in body["customers"]]
    assert values == sorted(values, reverse=True)
    assert set(ranked[-2:]) == set(surge["browsers"])  # never bought: expected 0
    assert all(0 <= c["p_alive"] <= 1 for c in body["customers"])
    assert body["segments"] and body["segments"][0]["customers"] >= 1
    everyone = await _audience(surge["client"],
                               {"dimension": "total", "value": "all", "metric": "orders"})
    assert set(surge["east"]) <= {c["customer_id"] for c in everyone["customers"]}


async def test_an_erased_customer_leaves_every_audience(surge):
    client, redis = surge["client"], surge["redis"]
    gone = surge["fans"][0]
    resp = await client.delete(f"/v1/customers/{gone}", headers=ADMIN)
    assert resp.status_code == 204, resp.text
    names = [n.decode() for n in await redis.smembers(keys.demand_reach_names())]
    assert "region:west" in names and "channel:web" in names
    for name in names:
        assert await redis.zscore(keys.demand_reach(name), gone) is None, name
    body = await _audience(client, {"dimension": "region", "value": "west",
                                    "metric": "orders"})
    assert gone not in {c["customer_id"] for c in body["customers"]}
