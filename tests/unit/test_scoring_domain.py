from datetime import UTC, datetime, timedelta

import pytest

from rapport.scoring.domain import BgNbdParams, bgnbd, propensity, r_score, rfm_label, score
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
