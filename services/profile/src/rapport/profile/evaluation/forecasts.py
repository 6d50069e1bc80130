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
from collections.abc import Callable, Iterable, Sequence
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass
from typing import Any

from rich.table import Table

from ..demand.forecast import ForecastConfig, Forecaster
from ..demand.forecast_view import total

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
    hour_total: Tally          # the next hour's and the next day's sums
    day_total: Tally


def score_series(name: str, times: Sequence[float], values: Sequence[float], step_s: float,
                 config: ForecastConfig | None = None) -> SeriesScore:
    """Rolling-origin scores of one series (``times`` in epoch seconds, evenly stepped)."""
    forecaster = Forecaster(step_s=step_s, config=config or ForecastConfig())
    per_hour = max(1, round(_HOUR / step_s))
    season = max(1, round(_DAY / step_s))
    horizon = season
    warm = 2 * season
    hour, day, hour_total, day_total = Tally(), Tally(), Tally(), Tally()
    for i, (t, v) in enumerate(zip(times, values, strict=True)):
        forecaster.update(t, v)
        if i + 1 < warm or (i + 1) % per_hour or i + horizon >= len(values):
            continue
        ahead = forecaster.forecast(horizon)
        for h, point in enumerate(ahead, start=1):
            actual, naive = values[i + h], values[i + h - season]
            args = (actual, point.expected, point.lower, point.upper, naive)
            day.add(*args)
            if h <= per_hour:
                hour.add(*args)
        for tally, n in ((hour_total, per_hour), (day_total, horizon)):
            whole = total(ahead[:n])
            tally.add(sum(values[i + 1:i + 1 + n]), whole.expected, whole.lower, whole.upper,
                      sum(values[i + 1 - season:i + 1 - season + n]))
    return SeriesScore(name, len(values), hour, day, hour_total, day_total)


def pooled(scores: Iterable[SeriesScore]) -> tuple[Tally, Tally, Tally, Tally]:
    """Next hour, next day, next hour's total, next day's total: summed over series."""
    out = (Tally(), Tally(), Tally(), Tally())
    for s in scores:
        for whole, part in zip(out, (s.hour, s.day, s.hour_total, s.day_total), strict=True):
            whole.points += part.points
            whole.abs_error += part.abs_error
            whole.naive_error += part.naive_error
            whole.inside += part.inside
    return out


def mean_of(values: Iterable[float | None]) -> float | None:
    """Mean of the defined values (a series the naive forecast gets exactly right, such
    as a perfect square wave, has no MASE)."""
    found = [v for v in values if v is not None and math.isfinite(v)]
    return sum(found) / len(found) if found else None


def _score_file(args: tuple[str, list[float], list[float], float]) -> SeriesScore:
    name, times, values, step = args
    return score_series(name, times, values, step)


def score_corpus(series: Iterable[tuple[str, list[float], list[float], float]],
                 progress: Callable[[int], None] = lambda n: None,
                 workers: int = 2) -> list[SeriesScore]:
    """Every series scored, in ``workers`` processes (the forecaster is pure Python)."""
    jobs = list(series)
    if workers <= 1:
        out = []
        for job in jobs:
            out.append(_score_file(job))
            progress(len(job[2]))
        return out
    with ProcessPoolExecutor(workers) as pool:
        out = []
        for score in pool.map(_score_file, jobs):
            out.append(score)
            progress(score.points)
        return out


def by_group(scores: Iterable[SeriesScore],
             group: Callable[[str], str]) -> dict[str, list[SeriesScore]]:
    out: dict[str, list[SeriesScore]] = {}
    for s in scores:
        out.setdefault(group(s.name), []).append(s)
    return out


def summary_row(scores: list[SeriesScore]) -> dict[str, Any]:
    """Mean per-series MASE (as M4 reports it) and pooled coverage, per horizon."""
    hour, day, hour_total, day_total = pooled(scores)
    return {"series": len(scores),
            "hour_mase": mean_of(s.hour.mase for s in scores), "hour_coverage": hour.coverage,
            "day_mase": mean_of(s.day.mase for s in scores), "day_coverage": day.coverage,
            "hour_total_coverage": hour_total.coverage,
            "day_total_coverage": day_total.coverage, "points": day.points}


def table(title: str, groups: dict[str, list[SeriesScore]]) -> Table:
    out = Table(title=title)
    for col in ("series", "files", "MASE next hour", "80% coverage next hour",
                "MASE next day", "80% coverage next day", "80% coverage of totals (hour / day)",
                "forecast points"):
        out.add_column(col, justify="left" if col == "series" else "right")

    def fmt(v: float | None, pct: bool = False) -> str:
        return "n/a" if v is None else (f"{v:.1%}" if pct else f"{v:.3f}")

    everything = [s for group in groups.values() for s in group]
    for name, row in [*((k, summary_row(v)) for k, v in sorted(groups.items())),
                      ("all", summary_row(everything))]:
        out.add_row(name, str(row["series"]), fmt(row["hour_mase"]),
                    fmt(row["hour_coverage"], True), fmt(row["day_mase"]),
                    fmt(row["day_coverage"], True),
                    f"{fmt(row['hour_total_coverage'], True)} / "
                    f"{fmt(row['day_total_coverage'], True)}", f"{row['points']:,}",
                    style="bold" if name == "all" else None)
    return out
