"""Contact limits through the real next-action service and Redis: counted per person
across every channel, atomically (concurrent decisions cannot both pass a cap of 1),
paused after rejections, stopped after an acceptance, and said in the trace."""

import asyncio
import uuid

import pytest

from rapport.next_action.app import build as build_next_action
from rapport.next_action.settings import NextActionSettings
from rapport.shared import redis_store
from rapport.shared.layout import ProfileLayout
from rapport.shared.profiles import CustomerProfile, Metrics
from tests.conftest import redis_url
from tests.helpers import serving, without_exploration

ADMIN = {"Authorization": "Bearer dev-admin"}
CHANNEL = {"Authorization": "Bearer dev-channel"}
AGENT = {"Authorization": "Bearer dev-agent"}
DB = 6


@pytest.fixture
async def next_action(stack):
    settings = NextActionSettings(kafka_bootstrap=stack.kafka_bootstrap,
                                  redis_url=redis_url(stack, DB), dev_keys=True)
    async with serving(build_next_action(settings)) as client:
        await without_exploration(client)
        yield client


async def a_customer(stack) -> str:
    pid = f"it-{uuid.uuid4().hex[:8]}"
    redis = redis_store.connect(redis_url(stack, DB))
    await redis.set(ProfileLayout().profile(pid), CustomerProfile(
        customer_id=pid, metrics=Metrics(orders=3, revenue=300)).to_stored())
    await redis.aclose()
    return pid


async def decide(client, pid, channel="web"):
    resp = await client.post("/v1/next-best-action", headers=CHANNEL,
                             json={"customer_id": pid, "channel": channel, "limit": 1})
    assert resp.status_code == 200, resp.text
    return resp.json()


async def test_two_channels_at_once_cannot_both_pass_a_cap_of_one(stack, next_action):
    await next_action.put("/v1/offers", headers=ADMIN, json=[
        {"offer_id": "once", "name": "Once a week", "channels": ["web", "mobile", "chat"],
         "value": 100, "cost": 1, "contact": {"max": 1, "days": 7}},
        {"offer_id": "fallback", "name": "Always", "channels": ["web", "mobile", "chat"],
         "value": 10, "cost": 0.1}])
    pid = await a_customer(stack)
    channels = ["web", "mobile", "chat"] * 8
    decisions = await asyncio.gather(*(decide(next_action, pid, ch) for ch in channels))
    made = [d for d in decisions if [a["offer_id"] for a in d["actions"]] == ["once"]]
    assert len(made) == 1
    assert all([a["offer_id"] for a in d["actions"]] == ["fallback"]
               for d in decisions if d not in made)
    other = next(d for d in decisions if d not in made)
    trace = (await next_action.get(f"/v1/decisions/{other['decision_id']}",
                                   headers=AGENT)).json()["trace"]
    once = next(t for t in trace if t["offer_id"] == "once")
    assert "contact limit: already made 1 times in 7 days" in once["reasons"][-1]
    assert [a["offer_id"] for a in (await decide(next_action, await a_customer(stack)))[
        "actions"]] == ["once"]  # counted per person


async def test_paused_after_rejections_and_stopped_after_an_acceptance(stack, next_action):
    await next_action.put("/v1/offers", headers=ADMIN, json=[
        {"offer_id": "nag", "name": "Upgrade", "channels": ["web", "email"], "value": 100,
         "cost": 1, "kind": "service",
         "contact": {"pause_after_rejections": 2, "pause_days": 30}},
        {"offer_id": "gift", "name": "Gift", "channels": ["web"], "value": 50, "cost": 1,
         "contact": {"stop_after_accept": True}}])
    pid = await a_customer(stack)

    async def answer(decision, outcome):
        action = decision["actions"][0]
        resp = await next_action.post("/v1/outcomes", headers=CHANNEL, json={
            "decision_id": decision["decision_id"], "action_id": action["action_id"],
            "outcome": outcome})
        assert resp.status_code == 202
        return action["offer_id"]

    first = await decide(next_action, pid)
    assert await answer(first, "rejected") == "nag"
    await answer(first, "rejected")  # the same outcome again counts once
    assert [a["offer_id"] for a in (await decide(next_action, pid, "email"))["actions"]] == [
        "nag"]
    second = await decide(next_action, pid)
    assert await answer(second, "rejected") == "nag"
    paused = await decide(next_action, pid)
    assert [a["offer_id"] for a in paused["actions"]] == ["gift"]
    await answer(paused, "accepted")
    assert (await decide(next_action, pid))["actions"] == []
    last = await decide(next_action, pid)
    trace = (await next_action.get(f"/v1/decisions/{last['decision_id']}",
                                   headers=AGENT)).json()["trace"]
    reasons = {t["offer_id"]: t["reasons"][-1] for t in trace}
    assert reasons["nag"].startswith("paused: rejected 2 times")
    assert reasons["gift"].startswith("not made again: already accepted")
