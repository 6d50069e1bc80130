"""Who is most likely to want what is spiking: customers ranked by category affinity.

Scanning every profile per question does not scale, so stage 2 keeps, per category, a
bounded sorted set of the customers with the strongest affinity. Affinities decay
from different instants, so the set is scored by ``log2(score) + as_of / half-life``
(in days): every affinity then decays at the same rate from the same origin, the order
of the scores is the order of today's affinities, and a score never needs updating
just because time passed.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping
from datetime import datetime
from typing import Any

from rapport.shared.profiles import Affinity, CustomerProfile

from .series import Dimension, SeriesKey

_DAY = 86400.0


def rank_score(affinity: Affinity, half_life_days: float) -> float | None:
    """The affinity's position in its category's set (None: no interest to rank)."""
    if affinity.as_of is None or not affinity.score > 0 or not math.isfinite(affinity.score):
        return None
    return math.log2(affinity.score) + affinity.as_of.timestamp() / _DAY / half_life_days


def affinity_at(score: float, now: datetime, half_life_days: float) -> float:
    """The affinity a rank score stands for, decayed to ``now``."""
    return 2.0 ** (score - now.timestamp() / _DAY / half_life_days)


def additions(profiles: Mapping[str, CustomerProfile],
              half_life_days: float) -> dict[str, dict[str, float]]:
    """Category -> customer -> rank score, for profiles a batch changed."""
    out: dict[str, dict[str, float]] = {}
    for pid, profile in profiles.items():
        for category, affinity in profile.affinities.items():
            score = rank_score(affinity, half_life_days)
            if score is not None:
                out.setdefault(category, {})[pid] = score
    return out


def removals(gone: Mapping[str, Iterable[str]]) -> dict[str, set[str]]:
    """Category -> customers to forget (merged away or erased), from their categories."""
    out: dict[str, set[str]] = {}
    for pid, categories in gone.items():
        for category in categories:
            out.setdefault(category, set()).add(pid)
    return out


def category_of(series: SeriesKey, product_category: str | None) -> str | None:
    """The category whose affinity tells who wants what a series counts, if any."""
    if series.dimension is Dimension.CATEGORY:
        return series.value
    if series.dimension is Dimension.PRODUCT:
        return product_category
    return None


def rank(candidates: list[tuple[str, float]], profiles: Mapping[str, CustomerProfile | None],
         *, now: datetime, half_life_days: float, limit: int,
         value: Mapping[str, float] | None = None) -> dict[str, Any]:
    """The customers (strongest affinity first, gone ones skipped; with ``value``, the
    customers' expected value, equal affinities most valuable first) and the segments
    they belong to, most represented first."""
    customers: list[dict[str, Any]] = []
    worth = value or {}

    def key(c: tuple[str, float]) -> tuple[float, float, str]:
        return (-round(affinity_at(c[1], now, half_life_days), 4) if value is not None
                else -c[1], -worth.get(c[0], 0.0), c[0])
    for pid, score in sorted(candidates, key=key):
        profile = profiles.get(pid)
        if profile is None:
            continue
        row = {"customer_id": pid,
               "affinity": round(affinity_at(score, now, half_life_days), 4),
               "segments": sorted(profile.segments),
               "consents": {k: c.value for k, c in sorted(profile.consents.items())}}
        if value is not None:
            row["expected_value_90d"] = worth.get(pid, 0.0)
        customers.append(row)
        if len(customers) >= limit:
            break
    by_segment: dict[str, list[float]] = {}
    for c in customers:
        for name in c["segments"]:
            by_segment.setdefault(name, []).append(c["affinity"])
    segments = [{"segment": name, "customers": len(found),
                 "share": round(len(found) / len(customers), 4),
                 "affinity": round(sum(found), 4)}
                for name, found in by_segment.items()]
    segments.sort(key=lambda s: (-s["customers"], -s["affinity"], s["segment"]))
    return {"segments": segments, "customers": customers}
