"""Scores at a moment: RFM by population quintiles, CLV, churn, profit and tier."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from rapport.shared.profiles import CustomerProfile
from rapport.shared.scores import rfm
from rapport.shared.scores.compute import score
from rapport.shared.scores.model import PRIOR
from rapport.shared.scores.population import ListPopulation, MetricSketches, SketchPopulation

NOW = datetime(2026, 12, 1, 12, tzinfo=UTC)


def buyer(days_ago: list[int], value: float = 40.0, cid: str = "c1") -> CustomerProfile:
    p = CustomerProfile(customer_id=cid)
    for d in days_ago:
        at = NOW - timedelta(days=d)
        p.purchases.add(at, value)
        p.metrics.orders += 1
        p.metrics.revenue += value
        p.metrics.first_seen = min(filter(None, (p.metrics.first_seen, at)))
        p.metrics.last_seen = max(filter(None, (p.metrics.last_seen, at)))
    return p


def population_of(profiles: list[CustomerProfile]) -> ListPopulation:
    summaries = [p.purchases.summary(NOW) for p in profiles]
    s = [x for x in summaries if x is not None]
    values = [score(p, NOW, PRIOR, ListPopulation({})).value for p in profiles
              if p.purchases.days]
    return ListPopulation({rfm.RECENCY: [x.last_day for x in s],
                           rfm.FREQUENCY: [x.purchase_days for x in s],
                           rfm.MONETARY: [x.total_value for x in s], rfm.VALUE: values})


def test_quintiles_rank_ties_together_and_the_many_at_the_bottom_get_one() -> None:
    # 60% bought once: all of them f = 1; one more purchase day ranks above all of them.
    pop = ListPopulation({rfm.FREQUENCY: [1] * 60 + [2] * 20 + [3] * 10 + [8] * 10})
    scores = {f: rfm.quintile(rfm.standing(pop, rfm.FREQUENCY, f)) for f in (1, 2, 3, 8, 20)}
    assert scores == {1: 1, 2: 4, 3: 5, 8: 5, 20: 5}


def test_the_many_who_bought_today_are_all_fives_and_an_equal_crowd_is_average() -> None:
    today = 20000
    pop = ListPopulation({rfm.RECENCY: [today] * 40 + list(range(today - 60, today))})
    assert rfm.quintile(rfm.standing(pop, rfm.RECENCY, today)) == 5
    assert rfm.quintile(rfm.standing(pop, rfm.RECENCY, today - 60)) == 1
    same = ListPopulation({rfm.MONETARY: [10.0] * 50})
    assert rfm.quintile(rfm.standing(same, rfm.MONETARY, 10.0)) == 3


def test_continuous_values_split_into_even_fifths() -> None:
    pop = ListPopulation({rfm.MONETARY: [float(v) for v in range(1000)]})
    counts = [0] * 5
    for v in range(1000):
        counts[rfm.quintile(rfm.standing(pop, rfm.MONETARY, float(v))) - 1] += 1
    assert all(195 <= c <= 205 for c in counts), counts


def test_every_cell_of_the_grid_has_a_named_segment() -> None:
    assert set(rfm.GRID.values()) == set(rfm.SEGMENTS)
    assert rfm.segment(5, 5, 5) == "champions"
    assert rfm.segment(1, 5, 5) == "cannot_lose_them"
    assert rfm.segment(5, 1, 1) == "new"
    assert rfm.segment(1, 1, 1) == "lost"
    assert rfm.segment(2, 4, 3) == "at_risk"


def test_a_customer_who_goes_silent_becomes_riskier_without_any_event() -> None:
    p = buyer([400, 300, 200, 100, 60, 30])
    pop = population_of([p, buyer([10]), buyer([200, 5])])
    then = score(p, NOW, PRIOR, pop)
    later = score(p, NOW + timedelta(days=180), PRIOR, pop)
    assert later.churn_risk > then.churn_risk
    assert later.clv.p_alive < then.clv.p_alive
    assert later.rfm.recency_days == then.rfm.recency_days + 180
    assert later.clv.expected_orders_90d < then.clv.expected_orders_90d


def test_scores_as_of_the_past_see_only_what_was_bought_by_then() -> None:
    p = buyer([100, 50, 10])
    past = score(p, NOW - timedelta(days=40), PRIOR, ListPopulation({}))
    assert past.rfm.frequency == 2 and past.rfm.recency_days == 10


def test_horizon_adds_its_own_forecast_and_longer_horizons_expect_more() -> None:
    p = buyer([90, 60, 30, 5])
    s = score(p, NOW, PRIOR, ListPopulation({}), horizon_days=365)
    assert s.clv.horizon_days == 365
    assert s.clv.expected_orders > s.clv.expected_orders_90d
    assert s.clv.expected_value == pytest.approx(s.clv.expected_orders
                                                 * s.clv.expected_order_value, rel=1e-2)


def test_best_and_worst_tiers_follow_the_population_and_costs_count() -> None:
    crowd = [buyer([d, d + 30], value=20.0 + d, cid=f"c{d}") for d in range(1, 200, 2)]
    pop = population_of(crowd)
    best = buyer([3, 20, 40, 60, 80], value=400.0, cid="best")
    costly = buyer([150], value=10.0, cid="costly")
    costly.metrics.complaints, costly.metrics.calls = 3, 5
    assert score(best, NOW, PRIOR, pop).value_tier == "best"
    worst = score(costly, NOW, PRIOR, pop)
    assert worst.value_tier == "worst" and worst.profit < 0
    assert "top" in score(best, NOW, PRIOR, pop).reasons["value"][0]


def test_visitors_who_never_bought_are_prospects_who_age_out() -> None:
    p = CustomerProfile(customer_id="v")
    p.metrics.last_seen = NOW - timedelta(days=1)
    fresh = score(p, NOW, PRIOR, ListPopulation({}))
    stale = score(p, NOW + timedelta(days=120), PRIOR, ListPopulation({}))
    assert fresh.rfm.label == rfm.PROSPECT and fresh.clv.expected_orders_90d == 0
    assert stale.churn_risk > fresh.churn_risk


def test_model_version_and_reasons_on_every_score() -> None:
    s = score(buyer([30, 3]), NOW, PRIOR, ListPopulation({}))
    assert s.model_version == PRIOR.version
    assert all(s.reasons[k] for k in ("rfm", "clv", "churn", "value"))


def test_sketches_with_retractions_match_the_live_population() -> None:
    sketches = MetricSketches()
    for v in range(1000):
        sketches.added.update(float(v))
    for v in range(0, 1000, 2):  # half the customers moved away
        sketches.retracted.update(float(v))
    assert sketches.live == 500
    assert sketches.share_below(500.0) == pytest.approx(0.5, abs=0.03)
    assert sketches.share_below(500.0, inclusive=True) == pytest.approx(0.5, abs=0.03)
    pop = SketchPopulation.merged([{rfm.RECENCY: sketches}])
    assert pop.size(rfm.RECENCY) == 500
    assert pop.quantiles(rfm.RECENCY, [0.5])[0] == pytest.approx(500, abs=30)


@settings(max_examples=100, deadline=None)
@given(st.lists(st.integers(0, 2000), min_size=1, max_size=30),
       st.floats(0, 1e9), st.integers(0, 10**6), st.integers(0, 5000))
def test_scores_are_finite_and_in_range_for_any_history(days, value, calls, later) -> None:
    p = buyer(days, value=value)
    p.metrics.calls = calls
    s = score(p, NOW + timedelta(days=later), PRIOR, ListPopulation({}), horizon_days=3650)
    assert 0 <= s.churn_risk <= 1 and 0 <= s.clv.p_alive <= 1
    assert 1 <= s.rfm.r <= 5 and s.clv.expected_value is not None
    assert s.model_dump_json()  # every number is JSON (no inf, no NaN)


def test_two_readers_of_the_same_partition_sketches_rank_alike():
    """KLL merges flip coins; the population reads the partitions side by side, so two
    services reading the same stored sketches give a customer the same scores."""
    import random as _random

    rng = _random.Random(3)
    stored = []
    for _ in range(8):
        part = MetricSketches()
        for _ in range(5000):
            part.added.update(rng.expovariate(0.01))
        for _ in range(500):
            part.retracted.update(rng.expovariate(0.01))
        stored.append(part.to_bytes())

    def read() -> SketchPopulation:
        return SketchPopulation.merged(
            [{rfm.RECENCY: MetricSketches.from_bytes(a, r)} for a, r in stored])

    one, two = read(), read()
    for v in (1.0, 10.0, 50.0, 100.0, 250.0, 700.0):
        assert one.share_below(rfm.RECENCY, v) == two.share_below(rfm.RECENCY, v)
    assert one.size(rfm.RECENCY) == 8 * 4500
    assert one.share_below(rfm.RECENCY, 100.0) == pytest.approx(1 - 2.718281828 ** -1,
                                                                abs=0.03)
