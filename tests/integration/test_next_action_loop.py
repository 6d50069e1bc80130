"""The closed loop through the real next-action service, Kafka and Redis: policies and
a control group with stable assignment, exact probabilities on every action, the
decision log, outcomes by the API and by ingest's touchpoints counted once, ``ignored``
after the window, the offers report and off-policy evaluation."""

import asyncio
import uuid
from datetime import UTC, datetime

import pytest

from rapport.next_action.app import build as build_next_action
from rapport.next_action.settings import NextActionSettings
from rapport.shared import topics
from rapport.shared.events import Channel, DecisionLogged, MessageType, Touchpoint
from rapport.shared.kafka import durable_producer
from rapport.shared.layout import ProfileLayout
from tests.conftest import redis_url
from tests.helpers import end_offsets, eventually, read_since, serving

ADMIN = {"Authorization": "Bearer dev-admin"}
OPS = {"Authorization": "Bearer dev-ops"}
CHANNEL = {"Authorization": "Bearer dev-channel"}
AGENT = {"Authorization": "Bearer dev-agent"}
DB = 8


@pytest.fixture
async def next_action(stack, redis):
    settings = NextActionSettings(
        kafka_bootstrap=stack.kafka_bootstrap, redis_url=redis_url(stack, DB),
        dev_keys=True, learner_group_id=f"it-learner-{uuid.uuid4().hex[:6]}",
        outcome_window_s=10, ignored_sweep_interval_s=0.5, cache_s=0)
    async with serving(build_next_action(settings)) as client:
        yield client


def catalog(tag: str) -> list[dict]:
    return [{"offer_id": f"{tag}.{name}", "name": name, "channels": ["web"], "value": v,
             "cost": 0.5} for name, v in (("a", 20.0), ("b", 15.0), ("c", 10.0))]


async def decide(client, who: str) -> dict:
    resp = await client.post("/v1/next-best-action", headers=CHANNEL,
                             json={"anonymous_id": who, "channel": "web", "limit": 1})
    assert resp.status_code == 200, resp.text
    return resp.json()


async def test_policies_are_validated_whole_and_assignment_is_stable(next_action):
    bad = await next_action.put("/v1/policies", headers=ADMIN, json={
        "control_share": 0.1, "policies": [{"policy_id": "x", "share": 0.5}]})
    assert bad.status_code == 422 and "add up to 1" in bad.json()["message"]
    good = {"control_share": 0.5, "policies": [
        {"policy_id": "champion", "share": 0.3, "holdout_share": 0},
        {"policy_id": "challenger", "share": 0.2, "epsilon": 0.3, "optimism": 0.5,
         "holdout_share": 0}]}
    resp = await next_action.put("/v1/policies", headers=ADMIN, json=good)
    assert resp.status_code == 200 and resp.json()["version"] == 1
    assert (await next_action.put("/v1/policies", headers=ADMIN, json={"policies": []})
            ).status_code == 422
    got = (await next_action.get("/v1/policies", headers=ADMIN)).json()
    assert got["control_share"] == 0.5 and [p["policy_id"] for p in got["policies"]] == [
        "champion", "challenger"]
    assert (await next_action.get("/v1/policies", headers=CHANNEL)).status_code == 403

    tag = uuid.uuid4().hex[:6]
    await next_action.put("/v1/offers", headers=ADMIN, json=catalog(tag))
    seen: dict[str, str] = {}
    for i in range(60):
        d = await decide(next_action, f"anon-{tag}-{i}")
        assert d["group"] in ("treatment", "control")
        if d["group"] == "control":
            assert d["policy_id"] == "control" and d["actions"] == []
        else:
            assert d["policy_id"] in ("champion", "challenger") and len(d["actions"]) == 1
            assert 0 < d["actions"][0]["probability"] <= 1
        seen[f"anon-{tag}-{i}"] = d["policy_id"]
    assert set(seen.values()) == {"control", "champion", "challenger"}
    for who in list(seen)[:15]:  # stable per customer
        assert (await decide(next_action, who))["policy_id"] == seen[who]


async def test_outcomes_count_once_by_either_path_and_feed_the_report_and_evaluation(
        stack, next_action):
    tag = uuid.uuid4().hex[:6]
    await next_action.put("/v1/offers", headers=ADMIN, json=catalog(tag))
    await next_action.put("/v1/policies", headers=ADMIN, json={"policies": [
        {"policy_id": "explorer", "share": 1.0, "epsilon": 0.5, "holdout_share": 0}]})
    since = await end_offsets(stack.kafka_bootstrap, topics.DECISIONS)
    started = datetime.now(UTC).isoformat()
    made = [await decide(next_action, f"anon-{tag}-{i}") for i in range(40)]
    assert all(d["policy_id"] == "explorer" and len(d["actions"]) == 1 for d in made)
    chances = {round(a["probability"], 4) for d in made for a in d["actions"]}
    assert chances <= {round(0.5 + 0.5 / 3, 4), round(0.5 / 3, 4)}, chances

    # The decision log holds each, with its candidates' exact chances.
    logged = [DecisionLogged.from_bytes(r.value) for r in
              await read_since(stack.kafka_bootstrap, topics.DECISIONS, since,
                                 until=lambda rs: len(rs) >= 40)]
    mine = {d.decision_id: d for d in logged if d.decision_id in {m["decision_id"] for m in made}}
    assert len(mine) == 40
    first = mine[made[0]["decision_id"]]
    assert sum(c.probability for c in first.candidates) == pytest.approx(1.0, abs=1e-4)
    assert "anon-" not in first.customer  # only the fingerprint

    accepted = made[:10]
    for d in accepted:  # by the API...
        resp = await next_action.post("/v1/outcomes", headers=CHANNEL, json={
            "decision_id": d["decision_id"], "action_id": d["actions"][0]["action_id"],
            "outcome": "accepted"})
        assert resp.status_code == 202
    producer = durable_producer(stack.kafka_bootstrap, client_id="it-loop")
    await producer.start()
    try:  # ... and again as ingest's touchpoints: counted once
        for d in accepted:
            tp = Touchpoint(message_id=uuid.uuid4().hex, source="web", type=MessageType.TRACK,
                            event="Offer Accepted", anonymous_id="someone", channel=Channel.WEB,
                            timestamp=datetime.now(UTC), received_at=datetime.now(UTC),
                            properties={"decision_id": d["decision_id"],
                                        "action_id": d["actions"][0]["action_id"]})
            await producer.send_and_wait(topics.TOUCHPOINTS.name, tp.to_bytes(), key=b"x")
    finally:
        await producer.stop()

    async def reported():
        body = (await next_action.get("/v1/reports/offers", headers=OPS)).json()
        rows = [o for o in body["offers"] if o["offer_id"].startswith(tag)]
        total = sum(o["acceptances"] for o in rows)
        made_n = sum(o["decisions"] for o in rows)
        return (body, rows) if total == 10 and made_n == 40 else None
    body, rows = await eventually(reported, timeout=30, interval=0.5)
    expected = sum(a["propensity"] for d in made for a in d["actions"])
    assert sum(o["expected_acceptances"] for o in rows) == pytest.approx(expected, rel=1e-3)
    assert sum(o["profit"] for o in rows) == pytest.approx(
        sum(a["value"] for d in accepted for a in d["actions"]) - 40 * 0.5, abs=1e-6)
    assert any(p["policy_id"] == "explorer" for p in body["policies"])

    # The rest hear nothing: past the window they count as ignored (and nothing more).
    async def ignored():
        got = await next_action.get(f"/v1/decisions/{made[-1]['decision_id']}", headers=AGENT)
        assert got.status_code == 200
        resp = await next_action.post("/v1/evaluations", headers=OPS, json={
            "policy": {"random": True}, "since": started})
        return resp.json() if resp.status_code == 200 and resp.json()["pending"] == 0 \
            and resp.json()["decisions"] == 40 else None
    evaluated = await eventually(ignored, timeout=60, interval=1.0)
    for name in ("ips", "snips", "dr"):
        lo, hi = evaluated["estimates"][name]["ci95"]
        assert lo <= evaluated["estimates"][name]["value"] <= hi

    fixed = await next_action.post("/v1/evaluations", headers=OPS, json={
        "policy": {"fixed_offer": f"{tag}.a"}, "since": started})
    assert fixed.status_code == 200, fixed.text
    assert (await next_action.post("/v1/evaluations", headers=OPS, json={
        "policy": {"policy_id": "nope"}})).status_code == 404
    for bad in ({"policy": {}}, {"policy": {"random": True, "fixed_offer": "x"}}, [],
                {"policy": {"random": True}, "since": "yesterday"}):
        resp = await next_action.post("/v1/evaluations", headers=OPS, json=bad)
        assert resp.status_code == 422 and resp.json()["message"], bad
    assert (await next_action.get("/v1/reports/offers", headers=OPS,
                                  params={"since": "nonsense"})).status_code == 400
    await asyncio.sleep(0)


async def test_without_personalization_consent_the_profile_only_gates(stack, redis,
                                                                       next_action):
    from rapport.shared.profiles import Consent, CustomerProfile, Metrics
    tag = uuid.uuid4().hex[:6]
    await next_action.put("/v1/offers", headers=ADMIN, json=catalog(tag))
    now = datetime.now(UTC)
    for consented in (True, False):
        pid = f"it-{tag}-{consented}"
        await redis.set(ProfileLayout().profile(pid), CustomerProfile(
            customer_id=pid, metrics=Metrics(orders=4, revenue=400),
            consents={"personalization": Consent(value=consented, at=now)}).to_stored())
        made = await next_action.post("/v1/next-best-action", headers=CHANNEL,
                                      json={"customer_id": pid, "channel": "web"})
        decision = (await next_action.get(f"/v1/decisions/{made.json()['decision_id']}",
                                          headers=AGENT)).json()
        assert decision["personalised"] is consented and decision["known_customer"]
        assert any("no personalization consent" in n for n in decision["notes"]) \
            is not consented
        features = decision["features"]
        assert (sum(1 for f in features if f) > 3) is consented  # intercept + channel only


async def test_with_redis_down_decisions_degrade_and_reads_say_retry(stack):
    """A Redis that is really not there (a closed port) from the start: every decision
    is still answered, with its fallbacks said; what needs Redis answers 503."""
    settings = NextActionSettings(
        kafka_bootstrap=stack.kafka_bootstrap, redis_url="redis://127.0.0.1:9/0",
        dev_keys=True, learner_group_id=f"it-learner-{uuid.uuid4().hex[:6]}")
    async with serving(build_next_action(settings)) as client:
        resp = await client.post("/v1/next-best-action", headers=CHANNEL,
                                 json={"customer_id": "someone", "channel": "email"})
        assert resp.status_code == 200, resp.text
        assert resp.json()["actions"] == [] and resp.json()["policy_id"] == "default"
        got = await client.get(f"/v1/decisions/{resp.json()['decision_id']}",
                               headers=AGENT)
        assert got.status_code == 503 and got.json()["code"] == "unavailable"
        assert got.headers["retry-after"] == "5"
        assert (await client.get("/readyz")).status_code == 503
