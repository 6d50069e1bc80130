import math
from datetime import UTC, datetime, timedelta

import numpy as np
import orjson
import pytest
from hypothesis import assume, given, settings
from hypothesis import strategies as st
from scipy.special import hyp2f1

from rapport.scoring.domain import (
    MONEY_LIMIT,
    BgNbdParams,
    bgnbd,
    propensity,
    r_score,
    rfm_label,
    score,
)
from rapport.shared.profiles import CustomerProfile, Metrics

NOW = datetime(2026, 11, 23, tzinfo=UTC)


def profile(orders=0, revenue=0.0, last_order_days=None, first_days=365, returned=0.0,
            discounts=0.0, contacts=0, last_seen_days=0):
    m = Metrics(orders=orders, revenue=revenue, returned_value=returned, discounts=discounts,
                service_contacts=contacts, first_seen=NOW - timedelta(days=first_days),
                last_seen=NOW - timedelta(days=last_seen_days))
    if orders:
        m.first_order_at = NOW - timedelta(days=first_days)
        m.last_order_at = NOW - timedelta(days=last_order_days or 0)
    return CustomerProfile(customer_id="c", metrics=m)


@pytest.mark.parametrize(("days", "expected"), [(None, 1), (0, 5), (7, 5), (7.1, 4), (30, 4),
                                                (90, 3), (180, 2), (181, 1)])
def test_recency_score_bounds(days, expected):
    assert r_score(days) == expected


def test_labels():
    assert rfm_label(5, 5, 5) == "champion"
    assert rfm_label(1, 4, 3) == "at_risk"
    assert rfm_label(5, 1, 1) == "new"
    assert rfm_label(1, 1, 1) == "hibernating"


def test_bgnbd_alive_falls_with_silence_and_expectations_are_sane():
    p = BgNbdParams()
    assert bgnbd(0, 0, 10, 13, p)[0] == 1.0
    recent = bgnbd(5, 50, 52, 13, p)
    silent = bgnbd(5, 10, 52, 13, p)
    assert 0 < silent[0] < recent[0] <= 1
    assert 0 <= silent[1] < recent[1]


def test_frequent_recent_buyers_are_best_and_loss_makers_worst():
    best = score(profile(orders=12, revenue=3000, last_order_days=2), NOW)
    assert best.rfm.model_dump() == {"r": 5, "f": 5, "m": 5, "label": "champion"}
    assert best.value_tier == "best" and best.churn_risk < 0.2
    worst = score(profile(orders=1, revenue=50, returned=50, contacts=4, last_order_days=5), NOW)
    assert worst.profit == -20.0 and worst.value_tier == "worst"
    lapsed = score(profile(orders=6, revenue=600, last_order_days=300, first_days=400), NOW)
    assert lapsed.churn_risk > best.churn_risk
    assert 0 <= lapsed.clv.expected_value_90d < best.clv.expected_value_90d


def test_browsers_without_orders_age_out():
    fresh = score(profile(last_seen_days=0), NOW)
    stale = score(profile(last_seen_days=90), NOW)
    assert fresh.churn_risk == 0 and stale.churn_risk > 0.8
    assert fresh.clv.expected_orders_90d > 0


def test_propensity_shrinks_small_samples_to_the_prior():
    assert propensity(0, 0) == pytest.approx(0.05)
    assert propensity(1, 1) < 0.1
    assert propensity(500, 1000) == pytest.approx(0.5, abs=0.01)


# --- Numerical safety of BG/NBD and the scores ---------------------------------------

def textbook_bgnbd(x, t_x, big_t, horizon, p):
    """The closed form as published (as scoring computed it before the log-space rewrite,
    less its final ``max(0, .)``, which hid 0 x inf = NaN as 0): the reference wherever
    its powers and 2F1 stay finite."""
    with np.errstate(all="ignore"):  # 0 x inf: the caller skips such cases
        r, alpha, a, b = p.r, p.alpha, p.a, p.b
        big_t = max(big_t, t_x, 1e-9)
        ratio = ((alpha + big_t) / (alpha + t_x)) ** (r + x)
        odds = (a / (b + x - 1)) * ratio if x > 0 else 0.0
        z = horizon / (alpha + big_t + horizon)
        head = (a + b + x - 1) / (a - 1)
        tail = 1 - ((alpha + big_t) / (alpha + big_t + horizon)) ** (r + x) * hyp2f1(
            r + x, b + x, a + b + x - 1, z)
        return 1.0 / (1.0 + odds), head * tail / (1.0 + odds)


# Values of the textbook form for ordinary customers (CDNOW parameters, weeks); the third
# is the worked example of Fader, Hardie & Lee (2005): 1.226 purchases in 39 weeks.
PINNED = [
    ((0, 0, 10, 13), (1.0, 0.19522819723746168)),
    ((1, 1.5, 10, 13), (0.5027037465898095, 0.48188607777118153)),
    ((2, 30.43, 38.86, 39), (0.726578570080673, 1.226028174767135)),
    ((5, 50, 52, 13), (0.8702344857749912, 0.9854398241406912)),
    ((5, 10, 52, 13), (0.006293776029176381, 0.007126972838647194)),
    ((10, 30, 40, 90 / 7), (0.5137274418738603, 1.3934695704753515)),
    ((20, 70, 78, 52), (0.7737309774429719, 8.18219060871496)),
    ((50, 100, 104, 13), (0.9074817414990725, 5.232993739547435)),
]


@pytest.mark.parametrize(("args", "expected"), PINNED)
def test_bgnbd_keeps_the_published_values(args, expected):
    p_alive, orders = bgnbd(*args, BgNbdParams())
    assert p_alive == pytest.approx(expected[0], rel=1e-9)
    assert orders == pytest.approx(expected[1], rel=1e-9)


@settings(max_examples=300, deadline=None)
@given(x=st.integers(0, 300), big_t=st.floats(0, 1000), share=st.floats(0, 1),
       horizon=st.sampled_from([1.0, 90 / 7, 52.0]))
def test_bgnbd_equals_the_textbook_form_wherever_that_is_finite(x, big_t, share, horizon):
    p = BgNbdParams()
    t_x = big_t * share
    try:
        reference = textbook_bgnbd(x, t_x, big_t, horizon, p)
    except OverflowError:
        return
    assume(all(math.isfinite(v) for v in reference))
    got = bgnbd(x, t_x, big_t, horizon, p)
    for value, ref in zip(got, (reference[0], max(0.0, reference[1])), strict=True):
        assert math.isclose(value, ref, rel_tol=1e-9, abs_tol=1e-200)


@settings(max_examples=500, deadline=None)
@given(x=st.integers(0, 100_000), big_t=st.floats(0, 10_000), share=st.floats(0, 1))
def test_bgnbd_is_finite_for_any_history(x, big_t, share):
    p_alive, orders = bgnbd(x, big_t * share, big_t, 90 / 7, BgNbdParams())
    assert math.isfinite(p_alive) and 0.0 <= p_alive <= 1.0
    assert math.isfinite(orders) and orders >= 0.0


def test_seven_hundred_orders_at_one_backdated_time_score_as_long_gone():
    # The textbook form raises OverflowError here ((alpha+T)/alpha) ** 699.2).
    s = score(profile(orders=700, revenue=35_000, last_order_days=1000, first_days=1000), NOW)
    assert s.clv.p_alive == 0.0 and s.churn_risk == 1.0
    assert s.clv.expected_orders_90d == 0.0 and s.clv.expected_value_90d == 0.0
    recent = score(profile(orders=700, revenue=35_000, last_order_days=0, first_days=0), NOW)
    assert recent.clv.p_alive > 0.9 and 0 < recent.clv.expected_orders_90d < 1e9


def finite_numbers(value):
    if isinstance(value, dict):
        return all(finite_numbers(v) for v in value.values())
    if isinstance(value, float):
        return math.isfinite(value)
    return value is not None


@pytest.mark.parametrize("metrics", [
    {"orders": 1, "revenue": 1e308, "returned_value": -1e308},
    {"orders": 3, "revenue": math.inf},
    {"orders": 3, "revenue": -math.inf, "returned_value": math.inf},
    {"orders": 2, "revenue": math.nan, "returned_value": math.nan},
    {"orders": 10**30, "revenue": 1e308, "service_contacts": 10**30},
    {"orders": 0, "revenue": math.inf, "service_contacts": -(10**30)},
])
def test_absurd_metrics_still_give_finite_scores(metrics):
    p = profile(last_order_days=3, first_days=30)
    p.metrics = p.metrics.model_copy(update={"first_order_at": NOW - timedelta(days=30),
                                             "last_order_at": NOW - timedelta(days=3),
                                             **metrics})
    s = score(p, NOW)
    body = orjson.loads(s.model_dump_json())
    assert finite_numbers(body), body
    assert abs(s.profit) <= MONEY_LIMIT and 0 <= s.clv.expected_value_90d <= MONEY_LIMIT
    assert 0 <= s.clv.p_alive <= 1 and 0 <= s.churn_risk <= 1


def test_absurd_metrics_from_the_wire_give_finite_scores():
    raw = (b'{"customer_id": "c", "metrics": {"orders": 4, "revenue": 1e400, '
           b'"returned_value": NaN, "first_order_at": "2020-01-01T00:00:00Z", '
           b'"last_order_at": "2026-11-20T00:00:00Z"}}')
    s = score(CustomerProfile.from_bytes(raw), NOW)
    assert b"null" not in s.model_dump_json().encode()
    assert s.profit == MONEY_LIMIT and s.value_tier == "best"
