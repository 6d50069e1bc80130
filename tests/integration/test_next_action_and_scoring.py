"""Next-action and scoring against the real Kafka and Redis: the catalog is
validated whole, decisions are stored with their trace, outcomes go to Kafka (where
next-action's learner reads them, see test_next_action_loop), and scoring is ready on
Kafka, Redis and its profile-updates consumer."""

import uuid
from datetime import UTC, datetime

import pytest

from rapport.next_action.app import build as build_next_action
from rapport.next_action.settings import NextActionSettings
from rapport.scoring.app import build as build_scoring
from rapport.scoring.settings import ScoringSettings
from rapport.shared import redis_store, topics
from rapport.shared.events import OfferOutcome
from rapport.shared.layout import ProfileLayout
from rapport.shared.profiles import Consent, CustomerProfile, Metrics
from tests.conftest import redis_url
from tests.helpers import end_offsets, read_since, serving, without_exploration

ADMIN = {"Authorization": "Bearer dev-admin"}
CHANNEL = {"Authorization": "Bearer dev-channel"}
AGENT = {"Authorization": "Bearer dev-agent"}
OFFERS = [
    {"offer_id": "vip", "name": "VIP upgrade", "channels": ["web"], "value": 200, "cost": 1,
     "eligibility": [{"field": "profile.metrics.orders", "op": "gte", "value": 3}]},
    {"offer_id": "ship", "name": "Free shipping", "channels": ["web", "email"], "value": 20,
     "cost": 0.1},
]


@pytest.fixture
async def next_action(stack):
    settings = NextActionSettings(kafka_bootstrap=stack.kafka_bootstrap,
                                  redis_url=redis_url(stack, 2), dev_keys=True)
    async with serving(build_next_action(settings)) as client:
        await without_exploration(client)
        yield client


async def test_catalog_is_replaced_whole_or_not_at_all(next_action):
    assert (await next_action.put("/v1/offers", json=OFFERS, headers=ADMIN)).status_code == 200
    bad = [*OFFERS, {"offer_id": "ship", "name": "dup", "channels": ["web"], "value": 1,
                     "cost": 0}]
    resp = await next_action.put("/v1/offers", json=bad, headers=ADMIN)
    assert resp.status_code == 422 and "duplicate offer_id" in resp.json()["message"]
    resp = await next_action.put("/v1/offers", json={"not": "a list"}, headers=ADMIN)
    assert resp.status_code == 422
    current = await next_action.get("/v1/offers", headers=ADMIN)
    assert [o["offer_id"] for o in current.json()] == ["vip", "ship"]
    assert (await next_action.put("/v1/offers", json=OFFERS, headers=CHANNEL)).status_code == 403
    assert (await next_action.get("/v1/offers")).status_code == 401


async def test_decisions_use_the_profile_and_outcomes_reach_kafka(stack, next_action):
    await next_action.put("/v1/offers", json=OFFERS, headers=ADMIN)
    redis = redis_store.connect(redis_url(stack, 2))
    customer = f"it-{uuid.uuid4().hex[:8]}"
    await redis.set(ProfileLayout().profile(customer), CustomerProfile(
        customer_id=customer, metrics=Metrics(orders=4, revenue=400)).to_bytes())
    await redis.aclose()

    known = await next_action.post("/v1/next-best-action", headers=CHANNEL,
                                   json={"customer_id": customer, "channel": "web"})
    assert known.status_code == 200, known.text
    decision = known.json()
    assert [a["offer_id"] for a in decision["actions"]] == ["vip", "ship"]
    stranger = (await next_action.post("/v1/next-best-action", headers=CHANNEL,
                                       json={"anonymous_id": "never-seen", "channel": "web"}))
    assert [a["offer_id"] for a in stranger.json()["actions"]] == ["ship"]

    trace = (await next_action.get(f"/v1/decisions/{decision['decision_id']}",
                                   headers=AGENT)).json()["trace"]
    assert {t["offer_id"]: t["rank"] for t in trace} == {"vip": 1, "ship": 2}

    since = await end_offsets(stack.kafka_bootstrap, topics.OUTCOMES)
    action = decision["actions"][0]
    resp = await next_action.post("/v1/outcomes", headers=CHANNEL, json={
        "decision_id": decision["decision_id"], "action_id": action["action_id"],
        "outcome": "accepted"})
    assert resp.status_code == 202
    records = await read_since(stack.kafka_bootstrap, topics.OUTCOMES, since,
                               until=lambda rs: len(rs) >= 1)
    outcome = OfferOutcome.from_bytes(records[0].value)
    assert (outcome.offer_id, outcome.outcome, outcome.customer_id) == ("vip", "accepted",
                                                                       customer)
    for body, status in [({"decision_id": "nope", "action_id": "x", "outcome": "viewed"}, 404),
                         ({"decision_id": decision["decision_id"], "action_id": "x",
                           "outcome": "viewed"}, 422),
                         ({"decision_id": decision["decision_id"],
                           "action_id": action["action_id"], "outcome": "loved"}, 422)]:
        assert (await next_action.post("/v1/outcomes", headers=CHANNEL,
                                       json=body)).status_code == status
    assert (await next_action.post("/v1/next-best-action", headers=CHANNEL,
                                   json={"channel": "web"})).status_code == 422


async def test_offers_see_the_facts_segments_see(stack, next_action):
    """A condition on a consent holds for an offer as it does for a segment: both test
    the profile as readers see it (consents as booleans, derived metrics)."""
    await next_action.put("/v1/offers", headers=ADMIN, json=[
        {"offer_id": "news", "name": "Newsletter perk", "channels": ["email"], "value": 10,
         "cost": 0.1, "eligibility": [
             {"field": "profile.consents.marketing_email", "op": "eq", "value": True},
             {"field": "profile.metrics.average_order_value", "op": "gte", "value": 50}]}])
    redis = redis_store.connect(redis_url(stack, 2))
    now = datetime.now(UTC)
    ids = {}
    for consented in (True, False):
        pid = f"it-{uuid.uuid4().hex[:8]}"
        ids[consented] = pid
        await redis.set(ProfileLayout().profile(pid), CustomerProfile(
            customer_id=pid, metrics=Metrics(orders=2, revenue=200),
            consents={"marketing_email": Consent(value=consented, at=now)}).to_stored())
    await redis.aclose()
    for consented, pid in ids.items():
        made = (await next_action.post("/v1/next-best-action", headers=CHANNEL, json={
            "customer_id": pid, "channel": "email"})).json()
        assert [a["offer_id"] for a in made["actions"]] == (["news"] if consented else [])


async def test_scoring_is_ready_on_kafka_redis_and_its_consumer(stack):
    settings = ScoringSettings(kafka_bootstrap=stack.kafka_bootstrap,
                               redis_url=redis_url(stack, 3), dev_keys=True,
                               scoring_group_id=f"it-scoring-{uuid.uuid4().hex[:6]}")
    async with serving(build_scoring(settings)) as client:
        ready = (await client.get("/readyz")).json()
        assert ready["checks"] == {"kafka": "ok", "redis": "ok", "consumer": "ok"}
