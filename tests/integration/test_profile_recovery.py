"""The profile processors under failure, against the real Kafka and Redis: a
worker killed with SIGKILL mid-stream, and Redis flushed and rebuilt from Kafka.
Both end with every profile equal to the ground truth folded from the events sent."""

from __future__ import annotations

import asyncio
import os
import random
import signal
import socket
import subprocess
import sys
import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import pytest

from rapport.profile import domain
from rapport.profile.app import build
from rapport.profile.demand.series import Dimension, contribution
from rapport.profile.rebuild import RebuildRefused, rebuild
from rapport.profile.settings import ProfileSettings
from rapport.shared import keys, layout, redis_store
from rapport.shared.events import Channel, MessageType, Touchpoint
from rapport.shared.kafka import durable_producer, ensure_topics
from rapport.shared.layout import ProfileLayout
from rapport.shared.profiles import CustomerProfile
from rapport.shared.topics import TopicSpec
from tests.conftest import ROOT
from tests.helpers import committed_and_ends, eventually, facts_of, serving

CLUSTER = True  # run on the single Redis and on the local Redis Cluster

T0 = datetime.now(UTC) - timedelta(days=20)
ADMIN = {"Authorization": "Bearer dev-admin"}


def population(run: str, persons: int, per_person: int, seed: int) -> list[Touchpoint]:
    """Each person browses anonymously, identifies (linking both ids), then buys,
    returns, calls and reads email under their user id; everything arrives shuffled
    and 2% of messages twice."""
    rng = random.Random(seed)
    events: list[Touchpoint] = []
    for i in range(persons):
        user, anon = f"{run}-u{i}", f"{run}-a{i}"
        for k in range(per_person):
            when = T0 + timedelta(minutes=rng.randrange(0, 20 * 24 * 60))
            common = {"message_id": f"{run}-{i}-{k}", "source": "it", "timestamp": when,
                      "received_at": datetime.now(UTC),
                      "channel": rng.choice([Channel.WEB, Channel.MOBILE, Channel.STORE])}
            if k < 5:
                events.append(Touchpoint(type=MessageType.TRACK, event="Product Viewed",
                                         anonymous_id=anon, properties={
                                             "category": rng.choice(["shoes", "bags"])},
                                         **common))
            elif k == 5:
                events.append(Touchpoint(type=MessageType.IDENTIFY, user_id=user,
                                         anonymous_id=anon, traits={
                                             "email": f"{user}@example.com",
                                             "region": rng.choice(["west", "east"])},
                                         **common))
            else:
                kind = rng.choice(["Order Completed", "Product Added", "Order Refunded",
                                   "Call Started", "Email Opened", "Product Viewed"])
                props: dict[str, Any] = {"category": rng.choice(["shoes", "bags", "hats"])}
                if kind == "Order Completed":
                    price = rng.randrange(500, 20000) / 100
                    props |= {"order_id": f"o-{i}-{k}", "total": price, "products": [
                        {"sku": "s", "price": price, "quantity": 1, "cost": price / 2}]}
                elif kind == "Order Refunded":
                    props |= {"total": rng.randrange(100, 5000) / 100}
                events.append(Touchpoint(type=MessageType.TRACK, event=kind, user_id=user,
                                         properties=props, **common))
    rng.shuffle(events)
    # A resend reaches Kafka right behind the original, as a retrying producer sends it
    # (ingest itself lets no resend through within its dedup window).
    resent = {e.message_id for e in rng.sample(events, len(events) // 50)}
    return [e for tp in events for e in ([tp, tp] if tp.message_id in resent else [tp])]


def ground_truth(events: list[Touchpoint]) -> dict[str, CustomerProfile]:
    """What each person's profile must be: the pure fold of their distinct events."""
    truth: dict[str, CustomerProfile] = {}
    seen: set[str] = set()
    now = datetime.now(UTC)
    for tp in sorted(events, key=lambda t: t.timestamp):
        if tp.message_id in seen:
            continue
        seen.add(tp.message_id)
        person = tp.message_id.rsplit("-", 2)[0] + "-u" + tp.message_id.rsplit("-", 2)[1]
        truth[person] = domain.apply(truth.get(person), tp, customer_id=person,
                                     processed_at=now)
    return truth


def comparable(p: CustomerProfile) -> dict[str, Any]:
    """The profile without what legitimately differs (processing time, internal order)."""
    body = p.model_dump(mode="json", exclude={"updated_at", "recent_message_ids",
                                              "merged_from", "segments"})
    body["identities"] = sorted((i["type"], i["value"]) for i in body["identities"])
    body["affinities"] = {k: (round(v["score"], 6), v["as_of"])
                          for k, v in body["affinities"].items()}
    return body


async def publish(bootstrap: str, topic: str, events: list[Touchpoint]) -> None:
    producer = durable_producer(bootstrap, client_id="it-recovery", linger_ms=20,
                                max_batch_size=256 * 1024)
    await producer.start()
    try:
        futures = [await producer.send(topic, e.to_bytes(), key=e.customer_key.encode())
                   for e in events]
        await asyncio.gather(*futures)
    finally:
        await producer.stop()


async def caught_up(bootstrap: str, group: str, topics: list[str], timeout: float = 180):
    """Wait until the group has consumed everything in ``topics``, twice in a row
    (stage 2 may still forward records to itself)."""
    streak = 0

    async def check() -> bool:
        nonlocal streak
        committed, ends = await committed_and_ends(bootstrap, group, topics)
        done = all(committed.get(tp, 0) >= end for tp, end in ends.items())
        streak = streak + 1 if done else 0
        return streak >= 2
    await eventually(check, timeout=timeout, interval=1.0)


async def stored_profiles(redis, run: str) -> dict[str, CustomerProfile]:
    out = {}
    async for key in redis.scan_iter(match=ProfileLayout.profile_pattern(f"{run}-*"),
                                     count=1000):
        out[ProfileLayout.profile_id_of(key)] = CustomerProfile.from_bytes(await redis.get(key))
    return out


def differences(mine: dict[str, CustomerProfile], theirs: dict[str, CustomerProfile],
                ) -> dict[str, dict[str, Any]]:
    """For each profile that differs, only the fields that do: (mine, theirs)."""
    out = {}
    for pid in theirs:
        a, b = comparable(mine[pid]), comparable(theirs[pid])
        if a != b:
            a |= a.pop("metrics")
            b |= b.pop("metrics")
            out[pid] = {k: (a.get(k), b.get(k)) for k in a.keys() | b.keys()
                        if a.get(k) != b.get(k)}
    return out


def assert_matches_truth(stored: dict[str, CustomerProfile],
                         truth: dict[str, CustomerProfile], run: str) -> None:
    mine = stored
    assert sorted(mine) == sorted(truth), "one profile per person, no anonymous leftovers"
    wrong = differences(mine, truth)
    assert not wrong, (f"{len(wrong)} profiles differ from the truth (stored, truth): "
                       f"{dict(list(wrong.items())[:3])}")
    # The anonymous profile was merged in, unless the login came before any anonymous event.
    odd = {pid: mine[pid].merged_from for pid in truth
           if mine[pid].merged_from not in ([], ["~a:" + pid.replace("-u", "-a")])}
    assert not odd, f"only the person's own anonymous profile is merged in: {odd}"
    assert sum(bool(mine[pid].merged_from) for pid in truth) > len(truth) // 4


def demand_truth(events: list[Touchpoint]) -> dict[str, int]:
    """Each metric's amount over every distinct event: what the demand buckets and the
    late counts must add up to, however the events were batched, killed and redelivered."""
    out: dict[str, int] = {}
    seen: set[str] = set()
    for tp in events:
        if tp.message_id in seen:
            continue
        seen.add(tp.message_id)
        for key, amount in contribution(tp, region="-", segments=()).series.items():
            if key.dimension is Dimension.TOTAL:
                out[key.metric.value] = out.get(key.metric.value, 0) + amount
    return out


async def demand_stored(redis) -> dict[str, int]:
    """Each metric's amount in every base bucket plus what came too late to be counted."""
    out: dict[str, int] = {}
    late = await redis.hgetall(keys.demand_late())
    for name, amount in late.items():
        if name != b"events":
            out[name.decode()] = out.get(name.decode(), 0) + int(amount)
    async for key in redis.scan_iter(match=keys.demand_counts(300, 0)[:-1] + "*", count=1000):
        for name, amount in (await redis.hgetall(key)).items():
            dimension, metric, _ = name.decode().split(":", 2)
            if dimension == Dimension.TOTAL.value:
                out[metric] = out.get(metric, 0) + int(amount)
    return out


async def forget_demand(redis) -> None:
    async for key in redis.scan_iter(match=f"{keys.tagged(keys.DEMAND)}:demand:*", count=1000):
        await redis.unlink(key)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture
async def isolated(stack, tmp_path, redis_target):
    """Topics, consumer group and Redis database of this test alone."""
    run = uuid.uuid4().hex[:6]
    touchpoints = TopicSpec(f"it.touchpoints.{run}", partitions=4)
    resolved = TopicSpec(f"it.resolved.{run}", partitions=4)
    await ensure_topics(stack.kafka_bootstrap, [touchpoints, resolved, facts_of(resolved)])
    settings = ProfileSettings(
        kafka_bootstrap=stack.kafka_bootstrap, redis_url=redis_target.url(2), dev_keys=True,
        profile_group_id=f"it-recovery-{run}", touchpoints_topic=touchpoints.name,
        resolved_topic=resolved.name,
        demand_facts_topic=facts_of(resolved).name, profile_data_dir=tmp_path, session_timeout_s=6,
        profile_port=free_port())
    redis = redis_store.connect(settings.redis_url)
    yield run, settings, redis
    await redis.aclose()


async def test_worker_killed_mid_stream_counts_every_event_once(isolated, tmp_path):
    run, settings, redis = isolated
    events = population(run, persons=500, per_person=48, seed=11)
    assert len(events) > 24_000
    await forget_demand(redis)
    await publish(settings.kafka_bootstrap, settings.touchpoints_topic, events)
    env = {**os.environ, **{f"RAPPORT_{k.upper()}": str(v) for k, v in settings.model_dump(
        include={"kafka_bootstrap", "redis_url", "profile_group_id", "touchpoints_topic",
                 "resolved_topic", "demand_facts_topic", "profile_data_dir", "session_timeout_s",
                 "profile_port"},
    ).items()}, "RAPPORT_DEV_KEYS": "true"}

    def worker(name: str) -> subprocess.Popen:
        log = open(tmp_path / f"{name}.log", "wb")
        return subprocess.Popen([sys.executable, "-m", "rapport.profile"], env=env, cwd=ROOT,
                                stdout=log, stderr=subprocess.STDOUT)

    async def applied(http: httpx.AsyncClient, stage: str) -> float:
        try:
            text = (await http.get(f"http://127.0.0.1:{settings.profile_port}/metrics")).text
        except httpx.HTTPError:
            return 0.0
        return sum(float(line.rsplit(" ", 1)[1]) for line in text.splitlines()
                   if line.startswith("rapport_profile_records_total{")
                   and f'outcome="applied",stage="{stage}"' in line)

    # Killed once while resolving identities (stage 1), then again while folding
    # (stage 2): each time between processing a batch and storing its effects, or not.
    distinct = len({e.message_id for e in events})
    for name, stage, share in (("first", "resolve", 0.5), ("second", "fold", 0.3)):
        proc = worker(name)
        try:
            async with httpx.AsyncClient(timeout=2) as http:
                async def far_enough(http=http, stage=stage, share=share) -> bool:
                    return await applied(http, stage) >= share * distinct
                await eventually(far_enough, timeout=120, interval=0.02)
        finally:
            proc.send_signal(signal.SIGKILL)
            proc.wait()
        folded = sum(p.metrics.touchpoints for p in (await stored_profiles(redis, run)).values())
        assert folded < distinct, "killed mid-stream"

    last = worker("last")
    try:
        await caught_up(settings.kafka_bootstrap, settings.profile_group_id,
                        [settings.touchpoints_topic, settings.resolved_topic])
    finally:
        last.terminate()
        last.wait(30)
    assert_matches_truth(await stored_profiles(redis, run), ground_truth(events), run)
    # Demand too: every distinct commerce event counted once, in a bucket or as late.
    assert await demand_stored(redis) == demand_truth(events)


async def test_redis_flushed_is_rebuilt_from_kafka_to_the_same_state(isolated):
    run, settings, redis = isolated
    events = population(run, persons=120, per_person=20, seed=5)
    await publish(settings.kafka_bootstrap, settings.touchpoints_topic, events)
    gone = f"{run}-u7"
    async with serving(build(settings)) as client:
        await caught_up(settings.kafka_bootstrap, settings.profile_group_id,
                        [settings.touchpoints_topic, settings.resolved_topic])
        with pytest.raises(RebuildRefused):
            await rebuild(settings, redis)  # never under running workers
        erased = await client.delete(f"/v1/customers/{gone}", headers=ADMIN)
        assert erased.status_code == 204
    before = await stored_profiles(redis, run)
    laid = await layout.current(redis)
    timelines = {pid: await redis.zrange(laid.timeline(pid), 0, -1) for pid in before}
    segments = {pid: p.segments for pid, p in before.items()}
    assert gone not in before and len(before) == 119

    await redis.flushdb()
    report = await rebuild(settings, redis, wait_s=30)
    assert report.erasures_reloaded >= 3 and report.touchpoints_to_replay == len(events)
    async with serving(build(settings)) as client:
        await caught_up(settings.kafka_bootstrap, settings.profile_group_id,
                        [settings.touchpoints_topic, settings.resolved_topic])
        assert (await client.get(f"/v1/customers/{gone}", headers=ADMIN)).status_code == 404
    after = await stored_profiles(redis, run)
    assert sorted(after) == sorted(before), "the erased person stays erased"
    changed = differences(after, before)
    assert not changed, f"{len(changed)} profiles differ once rebuilt (after, before): " \
                        f"{dict(list(changed.items())[:3])}"
    assert {pid: p.segments for pid, p in after.items()} == segments
    assert {pid: await redis.zrange(laid.timeline(pid), 0, -1) for pid in after} == timelines
    truth = ground_truth(events)
    truth.pop(gone)
    assert_matches_truth(after, truth, run)
