"""What ops read of a forecast: totals whose intervals add the points', the next hour
by bucket and the next day by hour, and the summary across series."""

from __future__ import annotations

import math
import random

import pytest

from rapport.profile.demand import forecast_view
from rapport.profile.demand.forecast import Forecaster, ForecastPoint
from rapport.profile.demand.series import Dimension, Metric, SeriesKey

T0 = 1_700_006_400


def point(at, expected, half):
    return ForecastPoint(at, expected, expected - half, expected + half)


def test_a_total_adds_expectations_and_the_points_half_widths():
    """A day's errors move together, so the total's interval is the points' summed."""
    points = [point(i * 300, 10.0, 2.0) for i in range(4)]
    whole = forecast_view.total(points)
    assert (whole.at, whole.expected, whole.lower, whole.upper) == (0, 40.0, 32.0, 48.0)


def test_a_total_keeps_a_skewed_interval_skewed():
    points = [ForecastPoint(0, 10.0, 9.0, 14.0)] * 4
    t = forecast_view.total(points)
    assert t.expected - t.lower == pytest.approx(4.0)
    assert t.upper - t.expected == pytest.approx(16.0)


def test_the_view_shows_the_next_hour_by_bucket_and_the_next_day_by_hour():
    f = Forecaster(step_s=300)
    rng = random.Random(2)
    for i in range(288 * 3):
        f.update(T0 + i * 300, 5000 + 1000 * math.sin(i / 288 * 2 * math.pi) + rng.gauss(0, 50))
    series = SeriesKey(Dimension.REGION, "west", Metric.REVENUE)
    body = forecast_view.view(series, f)
    assert body["series"] == {"dimension": "region", "value": "west", "metric": "revenue"}
    assert body["as_of"] == forecast_view.iso(T0 + 288 * 3 * 300)
    hour, day = body["next_hour"], body["next_day"]
    assert len(hour["points"]) == 12 and hour["resolution"] == "300s"
    assert len(day["points"]) == 24 and day["resolution"] == "3600s"
    assert hour["points"][0]["start"] == body["as_of"]
    assert day["points"][1]["start"] == forecast_view.iso(T0 + 288 * 3 * 300 + 3600)
    # revenue is counted in cents and shown in currency units
    assert 40 < hour["points"][0]["expected"] < 60
    for part in (hour, day):
        assert part["lower"] <= part["expected"] <= part["upper"]
    assert day["expected"] == pytest.approx(sum(p["expected"] for p in day["points"]), abs=0.5)
    assert set(body["quality"]) == {"next_hour", "next_day", "zero_share"}
    assert body["quality"]["zero_share"] == 0.0


def test_a_series_never_fed_has_no_forecast_parts():
    body = forecast_view.view(SeriesKey(Dimension.TOTAL, "all", Metric.VIEWS),
                              Forecaster(step_s=300))
    assert body["next_hour"] is None and body["next_day"] is None and body["as_of"] is None


def test_the_summary_means_mase_over_series_and_pools_coverage_over_points():
    def q(mase, coverage, points):
        return {"next_hour": {"points": points, "mase": mase, "coverage": coverage},
                "next_day": {"points": points, "mase": mase, "coverage": coverage}}

    found = {"total:views:all": q(0.5, 0.8, 100), "region:views:west": q(1.5, 0.6, 300),
             "category:views:hats": q(None, None, 0)}
    body = forecast_view.summary(found)
    assert body["series"] == 3
    hour = body["next_hour"]
    assert hour["scored_series"] == 2 and hour["mase_mean"] == 1.0
    assert hour["coverage"] == pytest.approx((80 + 180) / 400)
    assert hour["worst"][0] == {"series": {"dimension": "region", "value": "west",
                                           "metric": "views"}, "mase": 1.5}
    empty = forecast_view.summary({})
    assert empty["next_day"]["mase_mean"] is None and empty["next_day"]["coverage"] is None


def test_intermittent_series_are_summarised_apart_from_smooth_ones():
    def q(coverage, zero_share):
        part = {"points": 100, "mase": 0.7, "coverage": coverage}
        return {"next_hour": part, "next_day": part, "zero_share": zero_share}

    found = {"total:views:all": q(0.8, 0.0), "region:orders:west": q(0.95, 0.9),
             "category:orders:hats": q(0.93, 0.25), "category:views:hats": q(0.78, 0.24)}
    day = forecast_view.summary(found)["next_day"]
    assert day["smooth"] == {"series": 2, "coverage": pytest.approx(0.79), "mase_mean": 0.7}
    assert day["intermittent"]["series"] == 2
    assert day["intermittent"]["coverage"] == pytest.approx(0.94)
    assert day["coverage"] == pytest.approx((0.8 + 0.95 + 0.93 + 0.78) / 4)


def test_a_series_mostly_zero_says_so_and_its_intervals_cover_more_than_asked():
    """Demand in 5 % of buckets: an interval holding 0 holds 95 % of the outcomes, which
    is why such series are judged apart."""
    rng = random.Random(4)
    f = Forecaster(step_s=300)
    t0 = 1_700_000_000 // 300 * 300
    for i in range(288 * 6):
        f.update(t0 + 300 * i, float(rng.random() < 0.05))
    body = forecast_view.quality_json(f.quality(), f.zero_share)
    assert body["zero_share"] == pytest.approx(0.95, abs=0.02)
    assert body["zero_share"] > forecast_view.INTERMITTENT_ZERO_SHARE
    assert body["next_hour"]["coverage"] > 0.85
    assert Forecaster.from_state(f.to_state()).zero_share == f.zero_share
