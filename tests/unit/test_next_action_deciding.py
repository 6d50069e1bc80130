"""The decision use case degrades, never fails: a slow or broken part gives way to the
documented fallback and the decision says so (small fakes for the adapters)."""

import asyncio
import random
from datetime import UTC, datetime

import numpy as np

from rapport.next_action.catalog import Catalog, Offer
from rapport.next_action.deciding import Ask, Decider
from rapport.next_action.limits import Reservation
from rapport.next_action.policies import DEFAULT, Policy, PolicyConfig
from rapport.next_action.suitability import SuitabilityRules
from rapport.shared.events import Channel
from rapport.shared.privacy import Fingerprints
from rapport.shared.profiles import Consent, CustomerProfile

OFFERS = [Offer(offer_id="mkt", name="m", channels=["web"], value=50, cost=1),
          Offer(offer_id="svc", name="s", channels=["web"], value=5, cost=0.1, kind="service")]


class Model:
    version = 3

    def predict(self, ids, x):
        return np.full(len(ids), 0.2), np.zeros(len(ids))


class Parts:
    def __init__(self, *, reserve_delay=0.0, keep_fails=False, config=DEFAULT):
        self.reserve_delay, self.keep_fails, self.config = reserve_delay, keep_fails, config
        self.kept, self.logged = [], []

    async def catalog(self):
        return Catalog(offers=OFFERS)

    async def policies(self):
        return self.config

    async def model(self, learner):
        return Model()

    async def spikes(self):
        return frozenset()

    async def uplift(self):  # no uplift learner: ranked on acceptance (own tests below)
        return None

    async def reserve(self, customer_id, offers, limit, at, *, channel, sms, epsilon, u, r):
        await asyncio.sleep(self.reserve_delay)
        ids = [o.offer_id for o in offers]
        return Reservation(verdicts={o: "made" if i < limit else "not_chosen"
                                     for i, o in enumerate(ids)},
                           probabilities={o: 1.0 if i < limit else 0.0
                                          for i, o in enumerate(ids)})

    async def keep(self, decision):
        if self.keep_fails:
            raise ConnectionError("redis down")
        self.kept.append(decision)

    async def log(self, record):
        self.logged.append(record)


class Reader:
    def __init__(self, delay=0.0):
        self.delay = delay

    async def find(self, identifier):
        await asyncio.sleep(self.delay)
        p = CustomerProfile(customer_id=identifier)
        p.consents["personalization"] = Consent(value=True, at=datetime.now(UTC))
        return p

    async def scores(self, profile, now):
        class S:
            def model_dump(self, mode):
                return {"value_tier": "best", "rfm": {"label": "loyal"}}
        return S()


def decider(reader, parts):
    return Decider(reader, parts, Fingerprints("k" * 32), SuitabilityRules(),
                   customer_budget_s=0.05, contacts_budget_s=0.05, rng=random.Random(1))


ASK = Ask(identifier="c1", channel=Channel.WEB, placement=None, context={}, limit=2)


async def test_a_normal_decision_is_personalised_kept_and_logged():
    parts = Parts()
    d = await decider(Reader(), parts).decide(ASK)
    assert d.personalised and d.known_customer and d.customer_id == "c1"
    assert [a.offer_id for a in d.actions] == ["mkt", "svc"] and d.notes == []
    assert d.model_version == "contextual-3" and len(d.features) > 10
    assert parts.kept == [d] and parts.logged[0].decision_id == d.decision_id
    assert parts.logged[0].segment == "loyal" and parts.logged[0].customer != "c1"


async def test_a_slow_customer_read_decides_as_for_an_unknown_customer():
    d = await decider(Reader(delay=1.0), Parts()).decide(ASK)
    assert not d.known_customer and not d.personalised and d.customer_id == "c1"
    assert any("could not be read in time" in n for n in d.notes)


async def test_slow_contact_limits_leave_only_what_no_limit_applies_to():
    d = await decider(Reader(), Parts(reserve_delay=1.0)).decide(ASK)
    assert [a.offer_id for a in d.actions] == ["svc"]
    assert any("contact limits could not be checked" in n for n in d.notes)


async def test_a_decision_that_cannot_be_kept_is_still_answered():
    d = await decider(Reader(), Parts(keep_fails=True)).decide(ASK)
    assert d.actions and any("could not be kept" in n for n in d.notes)


async def test_the_control_group_gets_no_action_and_is_logged():
    config = PolicyConfig(control_share=0.5, policies=[Policy(policy_id="p", share=0.5)])
    parts = Parts(config=config)
    made = [await decider(Reader(), parts).decide(
        Ask(identifier=f"c{i}", channel=Channel.WEB, placement=None, context={}, limit=1))
        for i in range(30)]
    control = [d for d in made if d.group == "control"]
    assert control and all(d.actions == [] and d.policy_id == "control" for d in control)
    assert {r.group for r in parts.logged} == {"control", "treatment"}


class Down(Parts):
    """Redis down before anything was ever read: nothing cached to fall back on."""

    async def catalog(self):
        raise ConnectionError("redis down")

    async def policies(self):
        raise ConnectionError("redis down")

    async def model(self, learner):
        raise ConnectionError("redis down")


async def test_with_nothing_readable_a_decision_is_still_made_and_says_why():
    d = await decider(Reader(delay=1.0), Down(keep_fails=True)).decide(ASK)
    assert d.actions == [] and d.policy_id == "default" and d.group == "treatment"
    said = " ".join(d.notes)
    for part in ("policies could not be read", "catalog could not be read",
                 "response model could not be read", "customer could not be read",
                 "could not be kept"):
        assert part in said, part
