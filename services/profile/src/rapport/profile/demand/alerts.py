"""Spike alerts from detector readings: opened on ``start``, refreshed while they last,
closed on ``end``. An alert's id is a hash of its series and start, so the same alert
computed twice (a closer that crashed after publishing) is recognisably the same."""

from __future__ import annotations

import hashlib
from datetime import UTC, datetime
from typing import Any, Protocol

from .forecast import ForecastPoint
from .series import SeriesKey, present


class ReadingLike(Protocol):
    score: float
    expected: float
    direction: str | None
    alert: str | None
    magnitude: float


def iso(epoch_s: float) -> str:
    return datetime.fromtimestamp(epoch_s, UTC).isoformat()


def alert_id(series: SeriesKey, started_at: int) -> str:
    return hashlib.blake2b(f"{series.field}@{started_at}".encode(), digest_size=8).hexdigest()


def forecast_points(series: SeriesKey, at: int, width: int,
                    points: list[ForecastPoint]) -> list[dict[str, Any]]:
    """The forecast for the buckets after ``at``, each with its 80 % interval (demand
    is never negative, whatever the interval's arithmetic says)."""
    def shown(v: float) -> float:
        return present(series.metric, max(0.0, float(v)))

    return [{"at": iso(at + (i + 1) * width), "expected": shown(p.expected),
             "lower": shown(p.lower), "upper": shown(p.upper)}
            for i, p in enumerate(points)]


def _point(series: SeriesKey, at: int, value: float, reading: ReadingLike) -> dict[str, Any]:
    return {"at": iso(at), "observed": present(series.metric, float(value)),
            "expected": present(series.metric, float(reading.expected)),
            "magnitude": round(float(reading.magnitude), 4),
            "score": round(float(reading.score), 4)}


def opened(series: SeriesKey, at: int, width: int, value: float, reading: ReadingLike,
           forecast: list[ForecastPoint], category: str | None = None) -> dict[str, Any]:
    point = _point(series, at, value, reading)
    direction = str(reading.direction or ("up" if reading.magnitude >= 0 else "down"))
    alert: dict[str, Any] = {
        "id": alert_id(series, at), "series": series.to_json(), "direction": direction,
        "magnitude": point["magnitude"], "expected": point["expected"],
        "observed": point["observed"], "score": point["score"],
        "started_at": iso(at), "ended_at": None, "bucket_s": width,
        "latest": point, "peak": point,
        "forecast": forecast_points(series, at, width, forecast)}
    if category is not None:
        alert["category"] = category
    return alert


def refreshed(alert: dict[str, Any], series: SeriesKey, at: int, width: int, value: float,
              reading: ReadingLike, forecast: list[ForecastPoint]) -> dict[str, Any]:
    point = _point(series, at, value, reading)
    peak = alert["peak"]
    if abs(point["magnitude"]) > abs(peak["magnitude"]):
        peak = point
    return {**alert, "latest": point, "peak": peak,
            "forecast": forecast_points(series, at, width, forecast)}


def closed(alert: dict[str, Any], series: SeriesKey, at: int, width: int, value: float,
           reading: ReadingLike) -> dict[str, Any]:
    """The alert ended: the bucket starting at ``at`` was back to normal."""
    return {**alert, "ended_at": iso(at), "latest": _point(series, at, value, reading),
            "forecast": []}


def record(kind: str, alert: dict[str, Any]) -> dict[str, Any]:
    """The Kafka record of an alert opening (``started``) or closing (``ended``)."""
    return {"type": f"demand_spike_{kind}", "spike": alert}
