"""What ops read of a series' forecast: the next hour point by point and the next day hour
by hour, each part with a total and its interval, and how good the forecasts have been.

Totals add the points' expectations, and their intervals add the points' half-widths:
the errors of one hour's or one day's points move together (what the level and the
patterns got wrong persists), so they add up rather than cancel. Measured by
``rapport eval-forecast`` on NAB's development series: 79.8 % of next-hour and 81.5 % of
next-day totals fall inside their 80 % intervals (root-sum-square widths, even widened
for the residual's persistence, held only 74 % and 48 %).
"""

from __future__ import annotations

import statistics
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

from .alerts import iso
from .forecast import Forecaster, ForecastPoint
from .forecast_errors import Quality
from .series import SeriesKey, present

HOUR, DAY = 3600, 86400


def total(points: Sequence[ForecastPoint]) -> ForecastPoint:
    """The sum of consecutive points, with its interval (``at`` is the first's)."""
    return ForecastPoint(points[0].at if points else 0.0, sum(p.expected for p in points),
                         sum(p.lower for p in points), sum(p.upper for p in points))


def _shown(series: SeriesKey, point: ForecastPoint, width: float) -> dict[str, Any]:
    def amount(v: float) -> float:
        return present(series.metric, max(0.0, v))

    return {"start": iso(point.at), "end": iso(point.at + width),
            "expected": amount(point.expected), "lower": amount(point.lower),
            "upper": amount(point.upper)}


def _part(series: SeriesKey, points: list[ForecastPoint], step: float,
          group: int) -> dict[str, Any]:
    groups = [points[i:i + group] for i in range(0, len(points), group)]
    rows = [_shown(series, total(g), step * len(g)) for g in groups]
    whole = _shown(series, total(points), step * len(points))
    return {**whole, "resolution": f"{int(step * group)}s", "points": rows}


def view(series: SeriesKey, forecaster: Forecaster) -> dict[str, Any]:
    """The forecast as the ops API shows it."""
    step = forecaster.step_s
    per_hour = forecaster.points_per(HOUR)
    per_day = forecaster.points_per(DAY)
    ahead = forecaster.forecast(max(per_day, per_hour))
    body: dict[str, Any] = {
        "series": series.to_json(), "bucket_s": int(step),
        "as_of": None if forecaster.last_slot is None
        else iso((forecaster.last_slot + 1) * step),
        "interval": forecaster.config.coverage, "next_hour": None, "next_day": None,
        "quality": quality_json(forecaster.quality(), forecaster.zero_share)}
    if ahead:
        body["next_hour"] = _part(series, ahead[:per_hour], step, 1)
        body["next_day"] = _part(series, ahead[:per_day], step, per_hour)
    return body


# Syntetos and Boylan's cut-off: demand is intermittent where the average interval
# between non-zero buckets exceeds 1.32 buckets, i.e. more than 24.2 % of them are 0.
INTERMITTENT_ZERO_SHARE = 1.0 - 1.0 / 1.32


def quality_json(found: Iterable[Quality], zero_share: float | None = None) -> dict[str, Any]:
    out: dict[str, Any] = {
        q.horizon: {"points": q.points, "mase": None if q.mase is None else round(q.mase, 4),
                    "coverage": round(q.covered, 4) if q.points else None}
        for q in found}
    if zero_share is not None:
        out["zero_share"] = round(zero_share, 4)
    return out


def _horizon(rows: list[tuple[str, Mapping[str, Any]]], worst: int) -> dict[str, Any]:
    mases = [r["mase"] for _, r in rows if r.get("mase") is not None]
    points = sum(r["points"] for _, r in rows)
    inside = sum(r["points"] * (r.get("coverage") or 0.0) for _, r in rows)
    ranked = sorted(((r["mase"], name) for name, r in rows if r.get("mase") is not None),
                    reverse=True)[:worst]
    return {"scored_series": len(mases), "points": points,
            "mase_mean": round(statistics.fmean(mases), 4) if mases else None,
            "mase_median": round(statistics.median(mases), 4) if mases else None,
            "coverage": round(inside / points, 4) if points else None,
            "worst": [{"series": SeriesKey.parse(name).to_json(), "mase": round(m, 4)}
                      for m, name in ranked]}


def summary(per_series: Mapping[str, Mapping[str, Any]], *, worst: int = 5) -> dict[str, Any]:
    """Across tracked series: the mean and median MASE (series the naive forecast gets
    exactly right have none), the share of points inside their intervals, and the
    series forecast worst; the same apart for smooth and for intermittent series
    (:data:`INTERMITTENT_ZERO_SHARE`), whose intervals cannot hold just 80 %."""
    out: dict[str, Any] = {"series": len(per_series)}
    for horizon in ("next_hour", "next_day"):
        rows = [(name, q[horizon]) for name, q in per_series.items() if horizon in q]
        part = _horizon(rows, worst)
        for kind, wanted in (("smooth", False), ("intermittent", True)):
            chosen = [(name, r) for name, r in rows if wanted == (
                per_series[name].get("zero_share", 0.0) > INTERMITTENT_ZERO_SHARE)]
            sub = _horizon(chosen, 0)
            part[kind] = {"series": len(chosen), "coverage": sub["coverage"],
                          "mase_mean": sub["mase_mean"]}
        out[horizon] = part
    return out
