"""Scores stay finite whatever reaches them."""

import math
from datetime import UTC, datetime, timedelta

import orjson
import pytest

from rapport.shared.profiles import CustomerProfile, Metrics
from rapport.shared.scores.compute import score as compute_score
from rapport.shared.scores.model import PRIOR
from rapport.shared.scores.population import ListPopulation
from rapport.shared.scores.profit import MONEY_LIMIT

NOW = datetime(2026, 11, 23, tzinfo=UTC)


def score(p, now):
    return compute_score(p, now, PRIOR, ListPopulation({}))


def profile(orders=0, revenue=0.0, last_order_days=None, first_days=365, returned=0.0,
            discounts=0.0, contacts=0, last_seen_days=0):
    m = Metrics(orders=orders, revenue=revenue, returned_value=returned, discounts=discounts,
                service_contacts=contacts, first_seen=NOW - timedelta(days=first_days),
                last_seen=NOW - timedelta(days=last_seen_days))
    p = CustomerProfile(customer_id="c", metrics=m)
    if orders:
        m.first_order_at = NOW - timedelta(days=first_days)
        m.last_order_at = NOW - timedelta(days=last_order_days or 0)
        p.purchases.add(m.first_order_at, 10.0)
        p.purchases.add(m.last_order_at, 10.0)
    return p


def test_five_hundred_purchase_days_long_ago_score_as_long_gone():
    p = CustomerProfile(customer_id="c")
    for d in range(700):
        p.purchases.add(NOW - timedelta(days=3000 + d), 50.0)
    s = score(p, NOW)
    assert s.clv.p_alive < 1e-6 and s.churn_risk > 0.999
    assert s.clv.expected_orders_90d < 1e-6
    recent = CustomerProfile(customer_id="r")
    for d in range(700):
        recent.purchases.add(NOW - timedelta(days=d), 50.0)
    fresh = score(recent, NOW)
    assert fresh.clv.p_alive > 0.9 and 0 < fresh.clv.expected_orders_90d < 1e9


NULLABLE = {"recency_days", "horizon_days", "expected_orders", "expected_value"}


def finite_numbers(value, key=None):
    """Every number finite; null only where the contract allows it (no NaN written as
    null by the encoder)."""
    if isinstance(value, dict):
        return all(finite_numbers(v, k) for k, v in value.items())
    if isinstance(value, float):
        return math.isfinite(value)
    return value is not None or key in NULLABLE


@pytest.mark.parametrize("metrics", [
    {"orders": 1, "revenue": 1e308, "returned_value": -1e308},
    {"orders": 3, "revenue": math.inf},
    {"orders": 3, "revenue": -math.inf, "returned_value": math.inf},
    {"orders": 2, "revenue": math.nan, "returned_value": math.nan},
    {"orders": 10**30, "revenue": 1e308, "service_contacts": 10**30},
    {"orders": 0, "revenue": math.inf, "service_contacts": -(10**30)},
])
def test_absurd_metrics_still_give_finite_scores(metrics):
    p = profile(orders=2, last_order_days=3, first_days=30)
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
    p = CustomerProfile.from_bytes(raw)
    p.purchases.add(datetime(2020, 1, 1, tzinfo=UTC), 1e308)
    p.purchases.add(datetime(2026, 11, 20, tzinfo=UTC), math.inf)
    s = score(p, NOW)
    assert finite_numbers(orjson.loads(s.model_dump_json()))
    assert math.isfinite(s.profit) and abs(s.profit) <= MONEY_LIMIT
