from datetime import UTC, datetime

import pytest
from pydantic import ValidationError

from rapport.next_action.catalog import Catalog
from rapport.next_action.domain import DecisionRequest, decide
from rapport.shared.conditions import Condition, Op
from rapport.shared.events import Channel

NOW = datetime(2026, 11, 23, tzinfo=UTC)


def catalog(*offers):
    return Catalog(offers=list(offers))


def offer(oid, value=100.0, cost=1.0, channels=("web",), eligibility=()):
    return {"offer_id": oid, "name": oid, "channels": list(channels), "value": value,
            "cost": cost, "eligibility": list(eligibility)}


def req(channel=Channel.WEB, profile=None, scores=None, limit=3, context=None):
    return DecisionRequest(decision_id="d1", customer_id="c1", channel=channel, placement=None,
                           limit=limit, profile=profile, scores=scores, context=context or {})


@pytest.mark.parametrize(("op", "value", "actual", "holds"), [
    (Op.EQ, "best", "best", True), (Op.NE, "best", "best", False),
    (Op.GT, 2, 3, True), (Op.GTE, 3, 3, True), (Op.LT, 3, 3, False), (Op.LTE, 3, 3, True),
    (Op.IN, ["a", "b"], "b", True), (Op.NOT_IN, ["a"], "a", False),
    (Op.GT, 2, "3", False), (Op.GT, 2, True, False),
])
def test_conditions(op, value, actual, holds):
    c = Condition(field="scores.x", op=op, value=value)
    assert c.holds({"scores": {"x": actual}}) is holds


def test_missing_fields_fail_comparisons_and_satisfy_missing():
    assert not Condition(field="profile.metrics.orders", op=Op.GTE, value=1).holds({})
    assert Condition(field="profile.metrics.orders", op=Op.MISSING).holds({})
    assert not Condition(field="profile.metrics.orders", op=Op.EXISTS).holds({})


@pytest.mark.parametrize("bad", [
    [offer("a"), offer("a")],
    [{**offer("a"), "value": float("nan")}],
    [{**offer("a"), "cost": -1}],
    [{**offer("a"), "channels": []}],
    [{**offer("a"), "channels": ["fax"]}],
    [{**offer("a"), "eligibility": [{"field": "os.system", "op": "eq", "value": 1}]}],
    [{**offer("a"), "eligibility": [{"field": "scores.x", "op": "in", "value": 1}]}],
    [{**offer("a"), "surprise": 1}],
])
def test_invalid_catalogs_are_refused(bad):
    with pytest.raises(ValidationError):
        Catalog(offers=bad)


def test_ranks_by_expected_profit_and_respects_channel_and_limit():
    cat = catalog(offer("small", value=30), offer("big", value=100), offer("mid", value=50),
                  offer("store-only", value=1000, channels=("store",)))
    d = decide(cat, req(limit=2), {"mid": 0.5}, NOW)
    assert [a.offer_id for a in d.actions] == ["mid", "big"]   # 24.0 > 4.0
    assert d.actions[0].score == pytest.approx(0.5 * 50 - 1)
    trace = {t.offer_id: t for t in d.trace}
    assert not trace["store-only"].eligible
    assert "others ranked higher (limit 2)" in trace["small"].reasons[-1]


def test_unknown_customer_gets_a_decision_without_profile_offers():
    cat = catalog(offer("anyone"), offer("buyers", eligibility=[
        {"field": "profile.metrics.orders", "op": "gte", "value": 1}]))
    d = decide(cat, req(), {}, NOW)
    assert not d.known_customer
    assert [a.offer_id for a in d.actions] == ["anyone"]
    d2 = decide(cat, req(profile={"metrics": {"orders": 2}}), {}, NOW)
    assert {a.offer_id for a in d2.actions} == {"anyone", "buyers"}


def test_offers_that_lose_money_in_expectation_are_not_made():
    d = decide(catalog(offer("costly", value=10, cost=5)), req(), {}, NOW)
    assert d.actions == []
    assert "not positive" in d.trace[0].reasons[-1]
