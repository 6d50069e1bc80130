"""A partition's former owner cannot store a batch once a newer owner took it: the
owner epochs against the real Redis, then two real profile workers, one paused with
SIGSTOP across the rebalance that hands its partitions to the other, and resumed."""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys

import httpx
import pytest
from aiokafka import TopicPartition

from rapport.profile.store import BatchEffects, ProfileStore, offset_slots
from rapport.shared.fencing import Fence, Fenced
from rapport.shared.layout import ProfileLayout
from rapport.shared.profiles import CustomerProfile
from tests.conftest import ROOT
from tests.helpers import eventually
from tests.integration.test_profile_recovery import (
    assert_matches_truth,
    caught_up,
    free_port,
    ground_truth,
    isolated,  # noqa: F401 (a fixture)
    population,
    publish,
    stored_profiles,
)

CLUSTER = True  # run on the single Redis and on the local Redis Cluster

DB = 10
P0 = TopicPartition("it.fencing", 0)


def effects(name: str, offset: int) -> BatchEffects:
    profile = CustomerProfile(customer_id=name)
    return BatchEffects(profiles={name: profile}, offsets={(P0.topic, 0): offset})


async def test_a_stale_owner_stores_nothing_and_the_new_owner_goes_on(redis) -> None:
    laid = ProfileLayout(1)
    slots = offset_slots(laid, P0.topic)
    old_fence, new_fence = Fence(redis, "it-fence", slots), Fence(redis, "it-fence", slots)
    old = ProfileStore(redis, group="it-fence", layout=laid, resolved_topic=P0.topic,
                       fence=old_fence)
    new = ProfileStore(redis, group="it-fence", layout=laid, resolved_topic=P0.topic,
                       fence=new_fence)
    await old_fence.acquire({P0})
    await old.commit(effects("first", 10))
    await new_fence.acquire({P0})  # the rebalance the old owner missed
    with pytest.raises(Fenced):
        await old.commit(effects("stale", 11))
    assert await redis.get(laid.profile("stale")) is None
    assert await old.applied_offset(P0.topic, 0) == 10
    await new.commit(effects("second", 11))
    assert await new.applied_offset(P0.topic, 0) == 11
    # An owner that released the partition (revoked) is refused too.
    new_fence.release({P0})
    with pytest.raises(Fenced):
        await new.commit(effects("after", 12))


async def test_a_worker_paused_across_a_rebalance_cannot_overwrite_its_successor(
        isolated, tmp_path) -> None:  # noqa: F811
    run, settings, redis = isolated
    events = population(run, persons=300, per_person=40, seed=23)
    await publish(settings.kafka_bootstrap, settings.touchpoints_topic, events)
    env = {**os.environ, **{f"RAPPORT_{k.upper()}": str(v) for k, v in settings.model_dump(
        include={"kafka_bootstrap", "redis_url", "profile_group_id", "touchpoints_topic",
                 "resolved_topic", "demand_facts_topic", "profile_data_dir",
                 "session_timeout_s"}).items()},
           "RAPPORT_DEV_KEYS": "true"}

    def worker(name: str, port: int) -> subprocess.Popen:
        log = open(tmp_path / f"{name}.log", "wb")
        return subprocess.Popen([sys.executable, "-m", "rapport.profile"],
                                env={**env, "RAPPORT_PROFILE_PORT": str(port)}, cwd=ROOT,
                                stdout=log, stderr=subprocess.STDOUT)

    async def fenced(port: int) -> float:
        try:
            async with httpx.AsyncClient(timeout=2) as http:
                text = (await http.get(f"http://127.0.0.1:{port}/metrics")).text
        except httpx.HTTPError:
            return 0.0
        return sum(float(line.rsplit(" ", 1)[1]) for line in text.splitlines()
                   if line.startswith("rapport_fenced_batches_total{"))

    a_port, b_port = free_port(), free_port()
    a = worker("a", a_port)
    b = None
    try:
        async def started() -> bool:  # a is folding: some profiles are stored
            return len(await stored_profiles(redis, run)) > 20
        await eventually(started, timeout=120, interval=0.05)
        a.send_signal(signal.SIGSTOP)  # mid-stream, holding whatever batch it has
        b = worker("b", b_port)
        await caught_up(settings.kafka_bootstrap, settings.profile_group_id,
                        [settings.touchpoints_topic, settings.resolved_topic])
        before = {pid: p.metrics.touchpoints for pid, p in
                  (await stored_profiles(redis, run)).items()}
        a.send_signal(signal.SIGCONT)  # it wakes up believing it still owns them
        await asyncio.sleep(settings.session_timeout_s + 4)
        await caught_up(settings.kafka_bootstrap, settings.profile_group_id,
                        [settings.touchpoints_topic, settings.resolved_topic])
        after = await stored_profiles(redis, run)
        assert {pid: p.metrics.touchpoints for pid, p in after.items()} == before
        assert_matches_truth(after, ground_truth(events), run)
        print(f"fenced batches of the resumed worker: {await fenced(a_port):.0f}")
    finally:
        for proc in (a, b):
            if proc is not None:
                proc.send_signal(signal.SIGCONT)
                proc.terminate()
                try:
                    proc.wait(30)
                except subprocess.TimeoutExpired:
                    proc.kill()
