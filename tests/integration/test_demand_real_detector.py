"""Demand against the real Kafka and Redis with the REAL spike detector
(``SpikeDetector``, default ``DetectorConfig``): steady, Poisson-noisy views of one
category for 220 five-minute buckets, an 8x surge for 6 buckets, then 20 normal ones.
The steady part raises no alert; the surge opens exactly one ``demand_spike_started``
for the category's views on ``rapport.demand-alerts.v1``, listed by
``GET /v1/demand/spikes`` while open, and a ``demand_spike_ended`` follows once demand
is back.

The noise is a fixed draw (``SEED``) of no particular kind: the detector's stream alerts
judge demand against its usual level in usual deviations, and replayed offline on seeds
0-199 of the same scenario they open on the surge's first bucket every time, with no
alert on the steady part (see tests/unit/test_demand_detector.py for the synthetic
cases)."""

from __future__ import annotations

import random
import uuid
from datetime import timedelta

import orjson
import pytest

from rapport.profile.app import build
from rapport.profile.demand.closing import DetectorKind
from rapport.profile.demand.detector import DetectorConfig, SpikeDetector
from rapport.profile.evaluation.forecast_live import poisson
from rapport.shared import keys, redis_store, topics
from rapport.shared.kafka import durable_producer
from tests.helpers import end_offsets, eventually, read_between, read_since, serving
from tests.integration.test_demand_stream import (
    OPS,
    Events,
    T,
    W,
    _totals_are,
    closed_through,
    customers,
    demand_settings,
    publish,
    series,
    view,
)

SEED = 0
MEAN = 4                       # views per 5-minute bucket in the steady part
FACTOR = 8
STEADY = 220                   # buckets 0-219 steady (the detector scores from point 150)
SURGE = range(STEADY, STEADY + 6)
BUCKETS = SURGE.stop + 20      # buckets 226-245 back to normal
LATENESS = (BUCKETS + 10) * W  # nothing closes before the whole history is folded
FORECAST_S = 3600
GARDEN = {"dimension": "category", "value": "garden", "metric": "views"}
FIELD = "category:views:garden"


def counts() -> list[int]:
    rng = random.Random(SEED)
    return [poisson(rng, MEAN * (FACTOR if b in SURGE else 1)) for b in range(BUCKETS)]


def history(run: str, users: list[str]) -> list:
    """Each bucket's views spaced through the bucket in event time, by every customer in
    turn (so every partition moves), over three garden products."""
    e = Events(run)
    out = []
    for b, n in enumerate(counts()):
        for k in range(n):
            out.append(view(e, users[(7 * b + k) % len(users)], b, "garden", f"g{k % 3}",
                            second=k * W // n))
    return out


def replay(first: int, last: int) -> list[tuple]:
    """The detector fed the same counts offline: (bucket, value, score, expected, alert,
    magnitude) for buckets ``first``-``last``, to say what it made of them on failure."""
    detector = SpikeDetector(step_s=W, config=DetectorConfig())
    out = []
    for b, value in enumerate(counts()):
        r = detector.update((T + timedelta(seconds=b * W)).timestamp(), value)
        if first <= b <= last:
            out.append((b, value, round(r.score, 3), round(r.expected, 2), r.alert,
                        round(r.magnitude, 2)))
    return out


def at(bucket: int) -> str:
    return (T + timedelta(seconds=bucket * W)).isoformat()


def garden_records(records) -> list[dict]:
    return [body for body in (orjson.loads(r.value) for r in records)
            if body.get("spike", {}).get("series") == GARDEN]  # not incidents


@pytest.fixture(scope="module")
async def garden(stack, tmp_path_factory):
    """The whole scenario, closed in three steps (the steady part, the surge, the rest);
    what the alerts topic, the spikes API and the detector state showed after each."""
    # T is two days back: the last clock event must not be ahead of the wall clock
    assert BUCKETS * W + LATENESS + 10 < 2 * 86400
    run = uuid.uuid4().hex[:6]
    settings, touchpoints = await demand_settings(stack, tmp_path_factory, run=run, db=7,
                                                  group="it-demand-real",
                                                  forecast_s=FORECAST_S, lateness_s=LATENESS)
    redis = redis_store.connect(settings.redis_url)
    await redis.flushdb()
    producer = durable_producer(stack.kafka_bootstrap, client_id="it-demand-real")
    await producer.start()
    since = await end_offsets(stack.kafka_bootstrap, topics.DEMAND_ALERTS)
    fans, others = customers(run)
    users = fans + others
    events = history(run, users)
    real = DetectorKind(new=lambda step_s: SpikeDetector(step_s=step_s, config=DetectorConfig()),
                        restore=SpikeDetector.from_state)
    seen: dict = {"events": len(events)}
    clocks = Events(run + "-clock")

    async def close_through(bucket: int) -> None:
        """Every partition's clock past ``bucket``'s end plus the lateness (a view of
        another category, in a bucket never closed here), then wait for the closer."""
        second = (bucket + 1) * W + LATENESS + 10
        await publish(producer, touchpoints.name,
                      [view(clocks, user, 0, "hats", "h0", second=second) for user in users])
        await closed_through(client, bucket)

    async def snapshot(name: str, until=None) -> None:
        if until is None:  # the closer published before it committed: all are there
            now = await end_offsets(stack.kafka_bootstrap, topics.DEMAND_ALERTS)
            # (read_between cannot read nothing: its consumer, stopped at once, raises)
            records = [] if now == since else await read_between(
                stack.kafka_bootstrap, topics.DEMAND_ALERTS, since, now)
        else:
            records = await read_since(stack.kafka_bootstrap, topics.DEMAND_ALERTS, since,
                                       until=lambda rs: until(garden_records(rs)))
        spikes = await client.get("/v1/demand/spikes", headers=OPS)
        assert spikes.status_code == 200, spikes.text
        slot = await redis.hget(keys.demand_detectors(), FIELD)
        seen[name] = {"records": garden_records(records),
                      "all": [orjson.loads(r.value) for r in records],
                      "spikes": spikes.json()["spikes"],
                      "detector": None if slot is None else orjson.loads(slot)["state"]}

    try:
        async with serving(build(settings, detectors=real)) as client:
            await publish(producer, touchpoints.name, events)
            await eventually(lambda: _totals_are(client, "garden", "views", len(events)),
                             timeout=90)
            seen["buckets"] = await series(client, "category", "garden", "views")
            await close_through(SURGE.start - 1)
            await snapshot("steady")
            await close_through(SURGE.stop - 1)
            await snapshot("surge", until=lambda rs: any(
                r["type"] == "demand_spike_started" for r in rs))
            await close_through(BUCKETS - 1)
            await snapshot("after", until=lambda rs: any(
                r["type"] == "demand_spike_ended" for r in rs))
            yield seen
    finally:
        await producer.stop()
        await redis.aclose()


def _garden_spikes(spikes: list[dict]) -> list[dict]:
    return [s for s in spikes if s["series"] == GARDEN]


async def test_the_buckets_hold_the_exact_counts(garden):
    want = counts()
    assert garden["events"] == sum(want) < 2000
    # the 5m series shows the last 100 buckets (146-245) before the clocks moved on
    assert garden["buckets"] == {b: n for b, n in enumerate(want) if b >= BUCKETS - 100 and n}


async def test_the_steady_part_raises_no_alert(garden):
    steady = garden["steady"]
    assert steady["records"] == [], replay(150, STEADY - 1)
    assert steady["all"] == []  # nor for any other series (total, region, products ...)
    assert _garden_spikes(steady["spikes"]) == []
    assert steady["detector"]["n"] == STEADY  # fed once per bucket, zeros included
    assert steady["detector"]["alerts"]["active"] is None


async def test_the_surge_opens_one_alert_on_kafka_and_in_the_api(garden):
    surge = garden["surge"]
    started = [r for r in surge["records"] if r["type"] == "demand_spike_started"]
    assert len(started) == 1, (surge["records"], replay(STEADY - 3, SURGE.stop))
    assert [r["type"] for r in surge["records"]] == ["demand_spike_started"]
    spike = started[0]["spike"]
    assert spike["started_at"] == at(SURGE.start), replay(STEADY - 3, SURGE.stop)
    assert spike["direction"] == "up"
    assert spike["observed"] == counts()[SURGE.start]
    assert spike["magnitude"] > 3, spike  # 8x the steady level
    assert 2.5 <= spike["expected"] <= 5.5, spike  # the steady level, not the surge
    assert len(spike["forecast"]) == FORECAST_S // W
    assert spike["forecast"][0]["at"] == at(SURGE.start + 1)

    listed = _garden_spikes(surge["spikes"])
    assert [s["id"] for s in listed] == [spike["id"]]
    assert listed[0]["ended_at"] is None
    assert listed[0]["latest"]["at"] == at(SURGE.stop - 1)
    assert len(listed[0]["forecast"]) == FORECAST_S // W
    assert listed[0]["forecast"][0]["at"] == at(SURGE.stop)
    assert surge["detector"]["alerts"]["active"] == "up"


async def test_the_alert_ends_once_demand_is_back(garden):
    after = garden["after"]
    types = [r["type"] for r in after["records"]]
    assert types == ["demand_spike_started", "demand_spike_ended"], (
        after["records"], replay(SURGE.start, BUCKETS - 1))
    started, ended = (r["spike"] for r in after["records"])
    assert ended["id"] == started["id"]
    assert at(SURGE.stop) <= ended["ended_at"] <= at(BUCKETS - 1)
    assert ended["forecast"] == []
    assert _garden_spikes(after["spikes"]) == []
    assert after["detector"]["n"] == BUCKETS
    assert after["detector"]["alerts"]["active"] is None
