"""Attribution, holdouts, uplift arbitration and the uplift report: the pure parts of
deciding on what an offer changes."""

import math
import random
from datetime import UTC, datetime

import pytest
from hypothesis import given
from hypothesis import strategies as st

from rapport.next_action import attribution, holdouts, uplift_report
from rapport.next_action.arbitration import Candidate, rank
from rapport.next_action.catalog import Offer
from rapport.next_action.policies import Policy
from rapport.next_action.uplift import UpliftEstimate
from rapport.shared.events import DecisionLogged, LoggedCandidate, OrderFact

NOW = datetime(2026, 12, 1, 12, tzinfo=UTC)
GREEDY = Policy(policy_id="p", share=1.0, optimism=0.0, uplift_prior_windows=0)


def offer(oid: str, value: float = 10.0, cost: float = 1.0, **extra) -> Offer:
    return Offer(offer_id=oid, name=oid, channels=["web"], value=value, cost=cost, **extra)


def estimate(oid: str, p_with: float, p_without: float, m_with: float, m_without: float,
             sd: float = 0.0, n: int = 1000) -> UpliftEstimate:
    return UpliftEstimate(offer_id=oid, p_with=p_with, p_without=p_without,
                          margin_with=m_with, margin_without=m_without,
                          incremental_response=p_with - p_without,
                          incremental_margin=m_with - m_without, sd=sd, n_with=n,
                          n_without=n)


# --- order facts ------------------------------------------------------------------

def fact(**kw) -> OrderFact:
    base = {"kind": "order", "customer": "c", "message_id": "m", "occurred_at": NOW}
    return OrderFact(**{**base, **kw})


def test_margin_uses_the_lines_costs_and_the_default_rate_for_the_rest():
    # 100 of list price, all lines costed at 60, 20 off: 80 paid, 20 left
    assert fact(revenue=80, discount=20, costed_revenue=100, cost=60).margin(0.3) == \
        pytest.approx(20)
    # nothing costed: 100 list at a 30% margin is 30, less the 20 discount
    assert fact(revenue=80, discount=20).margin(0.3) == pytest.approx(10)
    # half costed (50 list, cost 40), half at the rate: 100 - 40 - 50 x 0.7 = 25
    assert fact(revenue=100, costed_revenue=50, cost=40).margin(0.3) == pytest.approx(25)
    assert fact(kind="refund", revenue=50).margin(0.3) == pytest.approx(-15)


# --- windows ----------------------------------------------------------------------

def logged(group="treatment", candidates=(), features=(1.0, 0.5)) -> DecisionLogged:
    return DecisionLogged(decision_id="d1", decided_at=NOW, customer="fp", policy_id="p",
                          group=group, channel="web", segment="loyal", tier="best",
                          features=features, candidates=tuple(candidates))


def cand(oid, made=False, held=False, p=0.9, cost=1.0, uplift=None) -> LoggedCandidate:
    return LoggedCandidate(offer_id=oid, value=10, cost=cost, propensity=0.1, probability=p,
                           made=made, held_out=held, uplift=uplift)


def test_a_window_round_trips_through_its_stored_fields():
    w = attribution.opened(logged(candidates=[cand("a", made=True, uplift=2.5),
                                              cand("b", p=0.05)]))
    assert (w.made, w.held_out, w.cost, w.chances) == ("a", None, 1.0, {"a": 0.9, "b": 0.05})
    back = attribution.Window.from_fields({k.encode(): v.encode()
                                           for k, v in w.fields().items()})
    assert back == w


def test_a_held_out_offer_is_the_windows_counterfactual_and_costs_nothing():
    w = attribution.opened(logged(candidates=[cand("a", held=True, p=0.855)]))
    assert (w.made, w.held_out, w.cost) == (None, "a", 0.0)
    assert attribution.arm(w) == ("a", "held_out")
    r = attribution.response_of(w)
    assert r.made is None and r.chances == {"a": 0.855}


def test_a_control_window_teaches_the_no_offer_arm_only():
    w = attribution.opened(logged(group="control"))
    assert attribution.arm(w) is None
    assert attribution.response_of(w).chances == {}
    c = attribution.counters(w)
    assert c["*|all|control|n"] == 1 and "*|all|treatment|n" not in c


def test_counters_of_a_treated_buyer():
    w = attribution.opened(logged(candidates=[cand("a", made=True, cost=2.0)]))
    w = attribution.Window(**{**w.__dict__, "orders": 2, "margin": 12.0})
    c = attribution.counters(w)
    assert c["a|all|treated|buyers"] == 1
    assert c["a|tier:best|treated|profit"] == pytest.approx(10.0)
    assert c["a|segment:loyal|treated|profit_sq"] == pytest.approx(100.0)
    assert c["*|all|treatment|margin"] == pytest.approx(12.0)


# --- holdouts ---------------------------------------------------------------------

def ranked(*offers: Offer) -> list[Candidate]:
    return [Candidate(o, 0.1, 0.0, 1.0, 1.0) for o in offers]


def test_a_made_marketing_offer_is_held_out_with_its_share_and_chances_scale():
    rs = ranked(offer("a"), offer("s", kind="service"), offer("b", holdout_share=0.5))
    verdicts = {"a": "made", "s": "made", "b": "not_chosen"}
    probs = {"a": 1.0, "s": 1.0, "b": 0.2}
    v, p = holdouts.withhold(rs, verdicts, probs, 0.1, lambda: 0.05)
    assert v == {"a": "held_out", "s": "made", "b": "not_chosen"}  # service never held out
    assert p == pytest.approx({"a": 0.9, "s": 1.0, "b": 0.1})
    v, _ = holdouts.withhold(rs, verdicts, probs, 0.1, lambda: 0.5)
    assert v["a"] == "made"


@given(st.floats(0, 0.5))
def test_the_held_out_share_matches_the_configured_share(share):
    rng = random.Random(7)
    rs = ranked(offer("a"))
    held = sum(holdouts.withhold(rs, {"a": "made"}, {"a": 1.0}, share, rng.random)[0]["a"]
               == "held_out" for _ in range(2000))
    assert abs(held / 2000 - share) < 4 * math.sqrt(share * (1 - share) / 2000) + 1e-9


# --- arbitration on incremental profit --------------------------------------------

def test_a_discount_to_someone_who_buys_anyway_is_not_made_and_the_trace_says_why():
    offers = [offer("discount20", value=20, cost=0.5), offer("recognition", value=1, cost=0.05)]
    est = {"discount20": estimate("discount20", 0.5, 0.5, 16.0, 20.0),
           "recognition": estimate("recognition", 0.52, 0.5, 20.8, 20.0)}
    worth, unworthy = rank(offers, {"discount20": (0.6, 0.0), "recognition": (0.2, 0.0)},
                           GREEDY, tier=None, context={}, uplift=est)
    assert [c.offer.offer_id for c in worth] == ["recognition"]
    assert worth[0].expected_profit == pytest.approx(0.8 - 0.05)
    assert [u.offer.offer_id for u in unworthy] == ["discount20"]
    assert "buys anyway" in unworthy[0].reason and "-4.50" in unworthy[0].reason


def test_a_persuadable_customer_gets_the_offer_that_changes_their_mind():
    offers = [offer("discount20", value=20, cost=0.5)]
    est = {"discount20": estimate("discount20", 0.45, 0.05, 14.4, 2.0)}
    worth, _ = rank(offers, {"discount20": (0.3, 0.0)}, GREEDY, tier=None, context={},
                    uplift=est)
    assert worth[0].expected_profit == pytest.approx(14.4 - 2.0 - 0.5)
    assert worth[0].uplift == pytest.approx(12.4)


def test_a_new_offer_starts_from_the_catalogs_belief_and_moves_to_what_is_learnt():
    o = offer("d", value=20, cost=1.0)
    policy = GREEDY.model_copy(update={"uplift_prior_windows": 50})
    for n, expected in [(0, 0.3 * 20 - 1), (25, 2 / 3 * (0.3 * 20) + 1 / 3 * (-4) - 1),
                        (10_000, None)]:
        est = {"d": estimate("d", 0.5, 0.5, 16.0, 20.0, n=n)}
        worth, unworthy = rank([o], {"d": (0.3, 0.0)}, policy, tier=None, context={},
                               uplift=est)
        if expected is None:
            assert not worth and unworthy
        else:
            assert worth[0].expected_profit == pytest.approx(expected)


def test_service_messages_keep_their_acceptance_value():
    o = offer("s", value=5, cost=0.1, kind="service")
    worth, _ = rank([o], {"s": (0.5, 0.0)}, GREEDY, tier=None, context={},
                    uplift={"s": estimate("s", 0.1, 0.5, 0.0, 10.0)})
    assert worth[0].expected_profit == pytest.approx(2.4)


# --- the report -------------------------------------------------------------------

def arms(n_t, b_t, p_t, n_h, b_h, p_h, offer="a", cut="all"):
    return {f"{offer}|{cut}|treated|n": n_t, f"{offer}|{cut}|treated|buyers": b_t,
            f"{offer}|{cut}|treated|profit": p_t * n_t,
            f"{offer}|{cut}|treated|profit_sq": (p_t ** 2 + 1.0) * n_t,
            f"{offer}|{cut}|held_out|n": n_h, f"{offer}|{cut}|held_out|buyers": b_h,
            f"{offer}|{cut}|held_out|profit": p_h * n_h,
            f"{offer}|{cut}|held_out|profit_sq": (p_h ** 2 + 1.0) * n_h}


def test_the_report_gives_incremental_response_and_profit_with_intervals():
    hours = {10: {**arms(900, 450, 5.0, 100, 20, 2.0), **arms(9, 3, 1.0, 1, 0, 0.0,
                                                          cut="tier:best")}}
    rows = {"a": [[10, s, int(i % 2 == 0), int(s > 0.5 and i % 2 == 0), 0.0]
                  for i, s in enumerate([0.9, 0.8, 0.7, 0.6, 0.4, 0.3, 0.2, 0.1] * 5)]}
    out = uplift_report.summarise(hours, rows, 0, 100)
    a = out["offers"][0]
    assert a["offer_id"] == "a"
    assert a["treated"]["decisions"] == 900 and a["held_out"]["response_rate"] == 0.2
    assert a["incremental_response"] == pytest.approx(0.3)
    se = math.sqrt(0.25 / 900 + 0.16 / 100)
    assert a["incremental_response_ci95"] == pytest.approx([0.3 - 1.96 * se, 0.3 + 1.96 * se],
                                                           abs=1e-4)
    assert a["incremental_profit"] == pytest.approx(3.0)
    lo, hi = a["incremental_profit_ci95"]
    assert lo < 3.0 < hi and hi - lo == pytest.approx(2 * 1.96 * math.sqrt(
        1.0 * 900 / 899 / 900 + 1.0 * 100 / 99 / 100), rel=1e-3)
    assert a["by_tier"]["best"]["held_out"]["decisions"] == 1
    assert a["qini"]["coefficient"] > 0 and a["qini"]["curve"][-1]["targeted"] == 1.0


def test_an_arm_with_no_decisions_has_no_difference_and_one_decision_no_interval():
    out = uplift_report.summarise({1: arms(1, 1, 3.0, 0, 0, 0.0)}, {}, 0, 10)
    a = out["offers"][0]
    assert a["incremental_response"] is None and a["held_out"]["decisions"] == 0
    assert a["qini"] == {"windows": 0, "coefficient": None, "curve": []}
