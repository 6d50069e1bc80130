"""Ranking, levers, suitability, policies and their re-ranking for evaluation, the
spikes fold and the offers report: the pure parts of a decision."""

from datetime import UTC, datetime

import pytest
from hypothesis import given
from hypothesis import strategies as st
from pydantic import ValidationError

from rapport.next_action import exploration, reports
from rapport.next_action.arbitration import rank
from rapport.next_action.catalog import Catalog, Offer
from rapport.next_action.domain import DecisionRequest, plan
from rapport.next_action.policies import DEFAULT, Policy, PolicyConfig, assign, point
from rapport.next_action.spikes import fold
from rapport.next_action.suitability import SuitabilityRules, refusals
from rapport.next_action.targets import policy_probabilities
from rapport.shared.events import Channel, DecisionLogged, LoggedCandidate

NOW = datetime(2026, 12, 1, 12, tzinfo=UTC)
POLICY = Policy(policy_id="p", share=1.0, optimism=1.0)


def offer(oid: str, value: float = 10.0, cost: float = 1.0, **extra) -> Offer:
    return Offer(offer_id=oid, name=oid, channels=["web"], value=value, cost=cost, **extra)


def test_ranks_on_optimistic_profit_and_drops_what_cannot_pay():
    offers = [offer("sure", 10), offer("unsure", 10), offer("loser", 1, cost=2)]
    preds = {"sure": (0.30, 0.0), "unsure": (0.25, 0.10), "loser": (0.5, 0.1)}
    worth, unworthy = rank(offers, preds, POLICY, tier=None, context={})
    assert [c.offer.offer_id for c in worth] == ["unsure", "sure"]  # 0.35 x 10 > 0.30 x 10
    assert worth[0].score == pytest.approx(0.35 * 10 - 1)
    assert worth[0].expected_profit == pytest.approx(0.25 * 10 - 1)
    assert [u.offer.offer_id for u in unworthy] == ["loser"]
    assert "not positive, even at an optimistic 0.600" in unworthy[0].reason
    greedy = POLICY.model_copy(update={"optimism": 0.0})
    assert [c.offer.offer_id for c in rank(offers, preds, greedy, tier=None, context={})[0]
            ] == ["sure", "unsure"]


def test_levers_multiply_and_say_so():
    offers = [offer("a", priority=2.0, category="shoes"), offer("b")]
    policy = POLICY.model_copy(update={"optimism": 0.0, "tier_weights": {"best": 1.5},
                                       "context_weights": {"page=cart@b": 3.0},
                                       "spike_boost": 2.0})
    worth, _ = rank(offers, {"a": (0.2, 0.0), "b": (0.2, 0.0)}, policy, tier="best",
                    context={"page": "cart"}, spikes={"shoes"})
    by = {c.offer.offer_id: c for c in worth}
    assert by["a"].score == pytest.approx(1.0 * 2.0 * 1.5 * 2.0)
    assert by["b"].score == pytest.approx(1.0 * 1.5 * 3.0)
    assert any("demand spike in shoes" in r for r in by["a"].reasons)
    assert any("business priority 2" in r for r in by["a"].reasons)
    assert any("context page=cart (x3)" in r for r in by["b"].reasons)


def test_suitability_keeps_costly_offers_from_the_worst_and_discounts_from_full_price():
    rules = SuitabilityRules(costly_cost=5.0)
    loyal = {"rfm": {"r": 5, "f": 4}, "clv": {"p_alive": 0.9}, "value_tier": "best"}
    worst = {"rfm": {"r": 1, "f": 1}, "clv": {"p_alive": 0.3}, "value_tier": "worst"}
    costly, discount = offer("c", 100, cost=6), offer("d", discount=True)
    assert refusals(costly, worst, rules) and not refusals(costly, loyal, rules)
    assert refusals(discount, loyal, rules) and not refusals(discount, worst, rules)
    assert "likely to buy anyway" in refusals(discount, loyal, rules)[0]
    assert refusals(discount, None, rules) == []


def test_without_personalization_consent_the_tier_does_not_weigh():
    policy = POLICY.model_copy(update={"tier_weights": {"best": 10.0}})
    scores = {"value_tier": "best"}
    base = dict(decision_id="d", customer_id="c", channel=Channel.WEB, placement=None,
                limit=1, scores=scores)
    consenting = DecisionRequest(**base, profile={"consents": {"personalization": True}})
    silent = DecisionRequest(**base, profile={"consents": {}})
    cat = Catalog(offers=[offer("a")])
    assert consenting.personalised and not silent.personalised
    heavy = plan(cat, consenting, {"a": (0.3, 0.0)}, NOW, policy=policy).ranked[0].score
    light = plan(cat, silent, {"a": (0.3, 0.0)}, NOW, policy=policy).ranked[0].score
    assert heavy == pytest.approx(10 * light)


def test_policy_configs_are_refused_unless_they_add_up():
    with pytest.raises(ValidationError, match="add up to 1"):
        PolicyConfig(control_share=0.1, policies=[Policy(policy_id="a", share=0.8)])
    with pytest.raises(ValidationError, match="unique"):
        PolicyConfig(policies=[Policy(policy_id="a", share=0.5),
                               Policy(policy_id="a", share=0.5)])
    with pytest.raises(ValidationError):
        Policy(policy_id="a", share=1.0, tier_weights={"best": -1})
    assert DEFAULT.policies[0].share == 1.0 and DEFAULT.control_share == 0


def test_assignment_is_stable_and_follows_the_shares():
    config = PolicyConfig(control_share=0.1, policies=[Policy(policy_id="a", share=0.6),
                                                       Policy(policy_id="b", share=0.3)])
    got = [assign(config, f"c{i}") for i in range(20_000)]
    share = {k: sum(1 for g in got if (g.policy_id if g else None) == k) / len(got)
             for k in (None, "a", "b")}
    assert share[None] == pytest.approx(0.1, abs=0.01)
    assert share["a"] == pytest.approx(0.6, abs=0.015)
    assert all(assign(config, f"c{i}") == got[i] for i in range(200))
    assert point("x", "c1") != point("y", "c1")


@given(st.lists(st.tuples(st.floats(0.01, 0.9), st.floats(0, 0.2), st.floats(1, 50),
                          st.floats(0, 3), st.booleans()), min_size=1, max_size=8),
       st.integers(1, 3), st.sampled_from([0.0, 0.1, 0.5]), st.floats(0, 2))
def test_a_policy_replayed_on_the_log_gives_the_chances_it_gives_live(cands, limit, eps, k):
    """What evaluation assumes: re-ranking logged candidates reproduces the live odds."""
    offers = [offer(f"o{i}", v, c) for i, (_, _, v, c, _) in enumerate(cands)]
    preds = {f"o{i}": (p, sd) for i, (p, sd, _, _, _) in enumerate(cands)}
    live_policy = Policy(policy_id="live", share=1.0, optimism=2.0, epsilon=0.05)
    other = Policy(policy_id="other", share=1.0, optimism=k, epsilon=eps, explore_pool=2)
    worth, _ = rank(offers, preds, live_policy, tier=None, context={})
    allowed = {f"o{i}" for i, c in enumerate(cands) if c[4]}
    logged = DecisionLogged(
        decision_id="d", decided_at=NOW, customer="f", policy_id="live", group="treatment",
        channel=Channel.WEB, limit=limit, personalised=True, candidates=tuple(LoggedCandidate(
            offer_id=c.offer.offer_id, value=c.offer.value, cost=c.offer.cost,
            propensity=c.propensity, spread=c.spread, probability=0.5, made=False,
            allowed=c.offer.offer_id in allowed) for c in worth))
    replayed = dict(zip([c.offer_id for c in logged.candidates],
                        policy_probabilities(other, logged), strict=True))
    again, _ = rank([c.offer for c in worth], preds, other, tier=None, context={})
    again = [c for c in again[:limit - 1 + 2] if c.offer.offer_id in allowed]
    live = dict(zip([c.offer.offer_id for c in again],
                    exploration.probabilities(len(again), limit, eps), strict=True))
    for oid, p in replayed.items():
        assert p == pytest.approx(live.get(oid, 0.0))


def test_spikes_fold_opens_and_closes_rising_categories():
    up = {"type": "demand_spike_started", "spike": {
        "id": "s1", "direction": "up", "series": {"dimension": "category", "value": "shoes"}}}
    product = {"type": "demand_spike_started", "spike": {
        "id": "s2", "direction": "up", "category": "bags",
        "series": {"dimension": "product", "value": "p1"}}}
    down = {"type": "demand_spike_started", "spike": {
        "id": "s3", "direction": "down", "series": {"dimension": "category", "value": "x"}}}
    active = fold(fold(fold({}, up), product), down)
    assert set(active.values()) == {"shoes", "bags"}
    assert fold(active, {"type": "demand_spike_ended", "spike": {"id": "s1"}}) == {"s2": "bags"}
    assert fold(active, {"type": "something"}) == active
    incident = {"type": "demand_incident_started", "incident": {  # same topic, not folded
        "id": "i1", "direction": "up", "category": "hats", "members": [{"id": "s9"}]}}
    assert fold(active, incident) == active
    assert fold(active, {"type": "demand_incident_ended", "incident": {"id": "s2"}}) == active


def test_the_report_sums_actual_against_expected_and_profit_per_decision():
    d = DecisionLogged(decision_id="d", decided_at=NOW, customer="f", policy_id="p",
                       group="treatment", channel=Channel.WEB, segment="loyal", tier="best",
                       candidates=(LoggedCandidate(offer_id="a", value=10, cost=1,
                                                   propensity=0.2, probability=1, made=True),))
    control = DecisionLogged(decision_id="c", decided_at=NOW, customer="g",
                             policy_id="control", group="control", channel=Channel.WEB)
    hour = reports.hour_of(NOW.timestamp())
    counts: dict[str, float] = {}
    for part in (reports.logged_counts(d), reports.logged_counts(d),
                 reports.logged_counts(control)):
        for k, v in part.items():
            counts[k] = counts.get(k, 0.0) + v
    counts["a|loyal|best|accepted"] = 1
    counts["a|loyal|best|profit"] += 10
    counts["policy|p|accepted"] = 1
    counts["policy|p|profit"] += 10
    counts["policy|p|profit_sq"] += 9 * 9 - 1
    out = reports.summarise({hour: counts})
    a = out["offers"][0]
    assert (a["offer_id"], a["decisions"], a["acceptances"]) == ("a", 2, 1)
    assert a["expected_acceptances"] == pytest.approx(0.4) and a["profit"] == pytest.approx(8)
    assert a["by_tier"]["best"]["decisions"] == 2 and a["over_time"][0]["hour_start"] == hour * 3600
    p = {x["policy_id"]: x for x in out["policies"]}
    assert p["p"]["profit_per_decision"] == pytest.approx(4.0)  # (9 + -1) / 2
    lo, hi = p["p"]["ci95"]
    assert lo < 4.0 < hi
    assert p["control"]["decisions"] == 1 and p["control"]["group"] == "control"


def test_a_customer_worth_more_is_worth_spending_more_on():
    policy = POLICY.model_copy(update={"optimism": 0.0, "clv_weight": 1.0,
                                       "clv_reference": 200.0})
    offers = [offer("a")]
    worth = {v: rank(offers, {"a": (0.3, 0.0)}, policy, tier=None, context={},
                     clv_90d=v)[0][0].score for v in (None, 100.0, 400.0)}
    assert worth[None] == pytest.approx(2.0)
    assert worth[100.0] == pytest.approx(2.0 * 1.5) and worth[400.0] == pytest.approx(4.0)
