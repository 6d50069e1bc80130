"""Reading the services' own /metrics (Prometheus text format): sums by label, rates
between two readings, and quantiles of a histogram's increase. Pure functions."""

from __future__ import annotations

import math
from collections import defaultdict
from collections.abc import Iterable, Mapping

from prometheus_client.parser import text_string_to_metric_families

Labels = tuple[tuple[str, str], ...]
Samples = dict[str, dict[Labels, float]]
"""sample name -> labels -> value."""


def parse(text: str) -> Samples:
    out: Samples = defaultdict(dict)
    for family in text_string_to_metric_families(text):
        for s in family.samples:
            out[s.name][tuple(sorted(s.labels.items()))] = float(s.value)
    return dict(out)


def merge(readings: Iterable[Samples]) -> Samples:
    """Several services' samples as one (the same name from two services adds up)."""
    out: Samples = defaultdict(dict)
    for reading in readings:
        for name, series in reading.items():
            for labels, value in series.items():
                out[name][labels] = out[name].get(labels, 0.0) + value
    return dict(out)


def total(samples: Samples, name: str, by: str | None = None,
          where: Mapping[str, str] | None = None) -> dict[str, float]:
    """Sum of ``name`` grouped by the label ``by`` ("" key when ``by`` is None)."""
    out: dict[str, float] = defaultdict(float)
    for labels, value in samples.get(name, {}).items():
        d = dict(labels)
        if where and any(d.get(k) != v for k, v in where.items()):
            continue
        out[d.get(by, "") if by else ""] += value
    return dict(out)


def rates(before: Mapping[str, float], after: Mapping[str, float],
          seconds: float) -> dict[str, float]:
    """Per-second increase of each counter (a reset counts from zero)."""
    if seconds <= 0:
        return {k: 0.0 for k in after}
    return {k: max(0.0, (v - before.get(k, 0.0)) if v >= before.get(k, 0.0) else v) / seconds
            for k, v in after.items()}


def buckets(samples: Samples, name: str, where: Mapping[str, str] | None = None
            ) -> dict[float, float]:
    """Cumulative counts by upper bound of the histogram ``name`` (summed over series)."""
    out: dict[float, float] = defaultdict(float)
    for labels, value in samples.get(f"{name}_bucket", {}).items():
        d = dict(labels)
        if where and any(d.get(k) != v for k, v in where.items()):
            continue
        out[float(d["le"])] += value
    return dict(out)


def quantile(q: float, cumulative: Mapping[float, float]) -> float | None:
    """``histogram_quantile``: linear within the bucket, as Prometheus does; None when
    the histogram is empty; the highest finite bound when it lands in +Inf."""
    bounds = sorted(cumulative)
    if not bounds or cumulative[bounds[-1]] <= 0:
        return None
    count = cumulative[bounds[-1]]
    rank = q * count
    lower, below = 0.0, 0.0
    for bound in bounds:
        here = cumulative[bound]
        if here >= rank:
            if math.isinf(bound):
                return lower
            if here == below:
                return bound
            return lower + (bound - lower) * (rank - below) / (here - below)
        lower, below = (bound if not math.isinf(bound) else lower), here
    return lower


def increase(before: Mapping[float, float], after: Mapping[float, float]
             ) -> dict[float, float]:
    """The buckets' increase between two readings (after alone when it was reset)."""
    if any(after.get(k, 0.0) < v for k, v in before.items()):
        return dict(after)
    return {k: v - before.get(k, 0.0) for k, v in after.items()}
