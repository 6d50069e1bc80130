"""The whole system through HTTP: a new customer's touchpoints posted to ingest
show up, within a bounded wait, in their profile, scores and a decision."""

import uuid
from datetime import UTC, datetime, timedelta

import httpx
import pytest

from tests.helpers import eventually

AGENT = {"Authorization": "Bearer dev-agent"}
CHANNEL = {"Authorization": "Bearer dev-channel"}
ADMIN = {"Authorization": "Bearer dev-admin"}
SERVICES = ("ingest", "profile", "scoring", "next-action")


@pytest.fixture
async def http():
    async with httpx.AsyncClient(timeout=10) as client:
        yield client


async def test_a_new_customer_flows_from_ingest_to_a_decision(system, http):
    ingest, profile, scoring, nba = (system.url(s) for s in SERVICES)
    await http.put(f"{nba}/v1/offers", headers=ADMIN, json=[
        {"offer_id": "repeat-buyer", "name": "Thanks for coming back", "channels": ["web"],
         "value": 80, "cost": 1,
         "eligibility": [{"field": "profile.metrics.orders", "op": "gte", "value": 2}]},
        {"offer_id": "best-tier", "name": "Best customers only", "channels": ["web"],
         "value": 500, "cost": 1,
         "eligibility": [{"field": "scores.value_tier", "op": "eq", "value": "best"}]},
    ])
    # Its own policy too: another world on this stack may leave a control group, holdouts
    # or uplift arbitration in place, where a new customer may rightly get no offer.
    resp = await http.put(f"{nba}/v1/policies", headers=ADMIN, json={
        "control_share": 0.0, "policies": [{"policy_id": "default", "share": 1.0,
                                            "epsilon": 0.0}]})
    assert resp.status_code == 200, resp.text
    user, anon = f"e2e-{uuid.uuid4().hex[:8]}", f"anon-{uuid.uuid4().hex[:8]}"
    # Within the last hour, and today (UTC), so that recency is 0 days at any hour.
    now = datetime.now(UTC)
    span = min(timedelta(hours=1), (now - now.replace(hour=0, minute=0, second=0,
                                                      microsecond=0)) / 2)
    t0 = now - span
    at = lambda m: (t0 + m * span / 8).isoformat()  # noqa: E731
    batch = [
        {"type": "page", "anonymousId": anon, "name": "Home", "timestamp": at(0)},
        {"type": "identify", "userId": user, "anonymousId": anon, "timestamp": at(1),
         "traits": {"email": f"{user}@example.com", "region": "west"}},
        {"type": "track", "userId": user, "event": "Order Completed", "timestamp": at(2),
         "properties": {"order_id": "o1", "total": 120.0, "revenue": 110.0, "discount": 10.0}},
        {"type": "track", "userId": user, "event": "Order Completed", "timestamp": at(3),
         "context": {"channel": "store"}, "properties": {"order_id": "o2", "total": 60.0}},
        {"type": "track", "userId": user, "event": "Call Started", "timestamp": at(4),
         "context": {"channel": "call_center"}, "properties": {"reason": "delivery"}},
    ]
    resp = await http.post(f"{ingest}/v1/batch", json={"batch": batch},
                           auth=("dev-write-key", ""))
    assert resp.status_code == 200 and resp.json()["accepted"] == 5, resp.text

    seen: dict[str, object] = {}

    async def profile_complete():
        r = await http.get(f"{profile}/v1/customers/{user}", headers=AGENT)
        seen["last"] = (r.status_code, r.json())
        # The anonymous visit is stitched in: merged from its own profile when it was
        # resolved first, or folded straight in when the identify came first (the two
        # messages are keyed differently, so either may reach the resolver first).
        done = r.status_code == 200 and r.json()["metrics"]["touchpoints"] == 5 and (
            f"~a:{anon}" in r.json()["merged_from"]
            or {"type": "anonymous_id", "value": anon} in r.json()["identities"])
        return r.json() if done else None

    try:
        body = await eventually(profile_complete, timeout=60)
    except AssertionError as exc:
        raise AssertionError(f"profile incomplete: {seen['last']}") from exc
    m = body["metrics"]
    assert (m["orders"], m["revenue"], m["discounts"], m["service_contacts"]) == (2, 170.0,
                                                                                10.0, 1)
    assert body["customer_id"] == user
    assert body["channels"]["store"]["count"] == 1 and body["channels"]["web"]["count"] == 3
    assert {"type": "email", "value": f"{user}@example.com"} in body["identities"]
    assert body["traits"]["region"] == "west"
    by_email = await http.get(f"{profile}/v1/customers", params={"email": f"{user}@example.com"},
                              headers=AGENT)
    assert by_email.json()["customer_id"] == user

    async def scored():
        r = await http.get(f"{scoring}/v1/customers/{user}/scores", headers=AGENT)
        return r.json() if r.status_code == 200 and r.json()["rfm"]["monetary"] == 170 else None

    scores = await eventually(scored, timeout=30)
    # Two orders on one day are one purchase day; profit = 170 revenue - 119 cost of goods
    # (the default 30% margin) - 10 discount - 4 for the call.
    assert scores["rfm"]["frequency"] == 1 and scores["rfm"]["recency_days"] == 0
    assert scores["profit"] == 37.0 and scores["model_version"]

    async def decided():
        r = await http.post(f"{nba}/v1/next-best-action", headers=CHANNEL,
                            json={"customer_id": user, "channel": "web"})
        offers = [a["offer_id"] for a in r.json()["actions"]] if r.status_code == 200 else []
        return r.json() if "repeat-buyer" in offers else None

    decision = await eventually(decided, timeout=30)
    assert decision["customer_id"] == user and decision["decision_id"]
    action = decision["actions"][0]
    outcome = await http.post(f"{nba}/v1/outcomes", headers=CHANNEL, json={
        "decision_id": decision["decision_id"], "action_id": action["action_id"],
        "outcome": "viewed"})
    assert outcome.status_code == 202


async def test_every_service_is_ready_observable_and_documented(system, http):
    for svc in SERVICES:
        base = system.url(svc)
        assert (await http.get(f"{base}/healthz")).status_code == 200
        ready = await http.get(f"{base}/readyz")
        assert ready.status_code == 200 and ready.json()["status"] == "ready"
        assert "rapport_http_requests_total" in (await http.get(f"{base}/metrics")).text
        assert (await http.get(f"{base}/openapi.json")).json()["info"]["title"].startswith(
            "Rapport")


async def test_api_keys_and_roles_are_enforced(system, http):
    url = f"{system.url('profile')}/v1/customers/anyone"
    assert (await http.get(url)).status_code == 401
    assert (await http.get(url, headers={"Authorization": "Bearer nope"})).status_code == 401
    assert (await http.get(url, headers=CHANNEL)).status_code == 403
    assert (await http.get(url, headers=AGENT)).status_code == 404
