"""The contact policy's rules, daily budgets and their pacing through the UTC day: what
is valid, what a decision counts against, and how much of a budget is open when."""

import json
import math
from datetime import UTC, datetime, timedelta, timezone

import pytest
from hypothesis import given
from hypothesis import strategies as st
from pydantic import ValidationError

from rapport.next_action.catalog import Budget, Catalog, Offer
from rapport.next_action.domain import DecisionRequest, assemble, plan
from rapport.next_action.limits import (
    DEFAULT_RULES,
    ContactRule,
    Reservation,
    budget_reason,
    day_fraction,
    day_of,
    in_effect,
    media,
    paced_cap,
)
from rapport.next_action.settings import NextActionSettings
from rapport.shared.events import Channel

DAY = datetime(2026, 3, 1, tzinfo=UTC)
moments = st.integers(0, 86400 * 1000 - 1).map(lambda ms: DAY + timedelta(milliseconds=ms))


@given(st.integers(1, 10**6), moments, st.floats(0, 1))
def test_the_paced_cap_spreads_the_budget_over_the_day(n, at, ahead):
    cap = paced_cap(n, at, ahead)
    f = day_fraction(at)
    assert 0 <= cap <= n
    assert cap >= min(n, n * (f + ahead)) - 1e-6  # never below the even spread
    assert cap <= n * min(1.0, f + ahead) + 1  # nor a whole unit above it
    assert paced_cap(n, at + timedelta(minutes=7), ahead) >= cap or \
        day_of(at + timedelta(minutes=7)) != day_of(at)  # monotone within the day


@given(st.integers(1, 10**6), moments)
def test_an_hour_ahead_opens_a_share_at_midnight_and_all_of_it_an_hour_before_the_end(n, at):
    assert paced_cap(n, DAY, 1 / 24) == math.ceil(n / 24 - 1e-9) >= 1
    assert paced_cap(n, DAY.replace(hour=23), 1 / 24) == n
    assert paced_cap(n, at, 0) == min(n, math.ceil(n * day_fraction(at) - 1e-9))


def test_pacing_by_the_hour_and_in_utc():
    assert [paced_cap(24, DAY.replace(hour=h, minute=30), 0) for h in range(24)] == list(
        range(1, 25))
    assert paced_cap(100, DAY.replace(hour=8), 1 / 24) == 38  # 9/24 of 100, rounded up
    paris = DAY.replace(hour=9).astimezone(timezone(timedelta(hours=1)))
    assert day_fraction(paris) == 9 / 24 and day_of(paris) == day_of(DAY)
    assert day_of(DAY - timedelta(seconds=1)) == day_of(DAY) - 1


def test_rules_are_validated():
    assert ContactRule(name="sms-weekly", channel="sms", max=2, days=7).medium == "sms"
    assert ContactRule(name="any", max=5, days=7).medium == "*"
    for bad in [{"name": "x", "max": 0, "days": 7}, {"name": "x", "max": 1, "days": 0},
                {"name": "x y", "max": 1, "days": 7}, {"name": "x", "max": 201, "days": 7},
                {"name": "x", "channel": "fax", "max": 1, "days": 7},
                {"name": "x", "max": 1, "days": 7, "offer": "a"}, {"name": "x", "max": 1}]:
        with pytest.raises(ValidationError):
            ContactRule.model_validate(bad)


def test_rules_come_from_the_environment(monkeypatch):
    assert NextActionSettings(dev_keys=True).contact_rules == list(DEFAULT_RULES)
    monkeypatch.setenv("RAPPORT_CONTACT_RULES", json.dumps(
        [{"name": "email-weekly", "channel": "email", "max": 2, "days": 7},
         {"name": "any-weekly", "channel": None, "max": 5, "days": 7}]))
    rules = NextActionSettings(dev_keys=True).contact_rules
    assert [(r.name, r.medium, r.max) for r in rules] == [("email-weekly", "email", 2),
                                                          ("any-weekly", "*", 5)]
    monkeypatch.setenv("RAPPORT_CONTACT_RULES", "[]")
    assert NextActionSettings(dev_keys=True).contact_rules == []
    for bad in ('[{"name": "a", "max": 1, "days": 1}, {"name": "a", "max": 2, "days": 1}]',
                '[{"name": "a", "max": -1, "days": 1}]', "not json"):
        monkeypatch.setenv("RAPPORT_CONTACT_RULES", bad)
        with pytest.raises(ValueError):
            NextActionSettings(dev_keys=True)
    monkeypatch.setenv("RAPPORT_BUDGET_AHEAD", "2")
    monkeypatch.delenv("RAPPORT_CONTACT_RULES")
    with pytest.raises(ValidationError):
        NextActionSettings(dev_keys=True)


def test_what_a_decision_counts_against():
    assert media(Channel.EMAIL, False) == ("email", "*")
    assert media(Channel.MOBILE, True) == ("mobile", "sms", "*")
    rules = [*DEFAULT_RULES, ContactRule(name="any", max=5, days=7),
             ContactRule(name="app", channel=Channel.MOBILE, max=3, days=1)]
    assert [r.name for r in in_effect(rules, Channel.EMAIL, False)] == ["email-weekly", "any"]
    assert [r.name for r in in_effect(rules, Channel.MOBILE, True)] == ["sms-weekly", "any",
                                                                        "app"]
    assert [r.name for r in in_effect(rules, Channel.WEB, False)] == ["any"]


def test_reasons_read_as_sentences():
    email, sms, anyc, web = (ContactRule(name="email-weekly", channel="email", max=2, days=7),
                             ContactRule(name="s", channel="sms", max=1, days=1.5),
                             ContactRule(name="any", max=5, days=7),
                             ContactRule(name="w", channel="web", max=5, days=7))
    assert email.describe(2) == ("contact policy 'email-weekly': already 2 marketing emails "
                                 "in 7 days (any offer)")
    assert sms.describe(1) == "contact policy 's': already 1 marketing SMS in 1.5 days (any offer)"
    assert anyc.describe(5) == ("contact policy 'any': already 5 marketing contacts on any "
                                "channel in 7 days (any offer)")
    assert "5 marketing contacts on web" in web.describe(5)
    assert budget_reason(Budget(per_day=100), 40, 38) == (
        "daily budget: 40 of 100 made so far today, paced to 38 by now")


def test_budgets_are_validated():
    base = {"offer_id": "a", "name": "A", "channels": ["web"], "value": 1, "cost": 0}
    assert Offer.model_validate({**base, "budget": {"per_day": 5}}).budget == Budget(
        per_day=5, counts="made")
    for bad in [{"per_day": 0}, {"per_day": 5, "counts": "shown"}, {"per_day": 5, "per": 1},
                {"counts": "made"}]:
        with pytest.raises(ValidationError):
            Offer.model_validate({**base, "budget": bad})


def test_the_trace_says_why_with_the_reservation():
    offers = [{"offer_id": o, "name": o, "channels": ["email"], "value": v, "cost": 0}
              for o, v in [("a", 30), ("b", 20), ("c", 10)]]
    req = DecisionRequest(decision_id="d", customer_id="c", channel=Channel.EMAIL,
                          placement=None, limit=1, profile={"consents": {"marketing_email": True}})
    held = Reservation(verdicts={"a": "rule:email-weekly", "b": "budget", "c": "made"},
                       probabilities={"c": 1.0},
                       reasons={"a": "contact policy 'email-weekly': ...", "b": "daily budget"})
    planned = plan(Catalog(offers=offers), req, {}, DAY)
    decision = assemble(planned, req, DAY, policy_id="default", verdicts=held.verdicts,
                        probabilities=held.probabilities, why=held.reasons)
    assert [a.offer_id for a in decision.actions] == ["c"]
    trace = {t.offer_id: t.reasons[-1] for t in decision.trace}
    assert trace["a"].startswith("contact policy") and trace["b"] == "daily budget"
