"""``rapport eval-forecast``: the demand forecaster scored on whole series, rolling origin.

Each series is fed point by point to a fresh :class:`Forecaster`; every hour (every point
for hourly or coarser series), once two days are known, it forecasts the next day, and
those forecasts are compared with what came: the next hour's points and the whole next
day's. The yardstick is the seasonal-naive forecast made at the same moment (each point
as it was one day earlier): MASE is the forecaster's mean absolute error over the naive
one's on the same points, so under 1 beats it. Coverage is the share of points inside
their 80 % interval.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

from ..demand.forecast import ForecastConfig, Forecaster

_HOUR, _DAY = 3600, 86400


@dataclass
class Tally:
    """Sums over the forecast points of one horizon of one or more series."""

    points: int = 0
    abs_error: float = 0.0
    naive_error: float = 0.0
    inside: int = 0

    def add(self, actual: float, expected: float, lower: float, upper: float,
            naive: float) -> None:
        self.points += 1
        self.abs_error += abs(actual - expected)
        self.naive_error += abs(actual - naive)
        self.inside += int(lower <= actual <= upper)

    @property
    def mase(self) -> float | None:
        return self.abs_error / self.naive_error if self.naive_error > 0 else None

    @property
    def coverage(self) -> float | None:
        return self.inside / self.points if self.points else None


@dataclass(frozen=True)
class SeriesScore:
    name: str
    points: int
    hour: Tally
    day: Tally


def score_series(name: str, times: Sequence[float], values: Sequence[float], step_s: float,
                 config: ForecastConfig | None = None) -> SeriesScore:
    """Rolling-origin scores of one series (``times`` in epoch seconds, evenly stepped)."""
    forecaster = Forecaster(step_s=step_s, config=config or ForecastConfig())
    per_hour = max(1, round(_HOUR / step_s))
    season = max(1, round(_DAY / step_s))
    horizon = season
    warm = 2 * season
    hour, day = Tally(), Tally()
    for i, (t, v) in enumerate(zip(times, values, strict=True)):
        forecaster.update(t, v)
        if i + 1 < warm or (i + 1) % per_hour or i + horizon >= len(values):
            continue
        for h, point in enumerate(forecaster.forecast(horizon), start=1):
            actual, naive = values[i + h], values[i + h - season]
            args = (actual, point.expected, point.lower, point.upper, naive)
            day.add(*args)
            if h <= per_hour:
                hour.add(*args)
    return SeriesScore(name, len(values), hour, day)


def pooled(scores: Iterable[SeriesScore]) -> tuple[Tally, Tally]:
    hour, day = Tally(), Tally()
    for s in scores:
        for total, part in ((hour, s.hour), (day, s.day)):
            total.points += part.points
            total.abs_error += part.abs_error
            total.naive_error += part.naive_error
            total.inside += part.inside
    return hour, day


def mean_of(values: Iterable[float | None]) -> float | None:
    """Mean of the defined values (a series the naive forecast gets exactly right, such
    as a perfect square wave, has no MASE)."""
    found = [v for v in values if v is not None and math.isfinite(v)]
    return sum(found) / len(found) if found else None
