"""Who is most likely to respond to a spike with no category to rank by: for a region,
channel or segment spike the customers of that region (living there or seen buying or
browsing there), who use that channel, or in that segment; for a total spike the top of
the whole population, ranked by their scores (:mod:`rapport.shared.scores`).

The score ranked by is the customer's expected value over the next 90 days (BG/NBD
expected orders times the Gamma-Gamma order value: already weighted by P(alive)),
then P(alive) itself, which tells apart the many who are expected to spend nothing
(prospects, lapsed buyers) by how recently they were active. Scanning every profile
per question does not scale, so demand keeps per region, channel and segment (and for
everyone) a bounded sorted set scored by that value as of the profile's last change;
a question re-scores its candidates at the moment asked with the model in use.

Stage 2 only picks what the score needs (:class:`Point`: the sets, the purchase summary,
when last seen), a few microseconds a profile; demand counting, on its own consumer
group, computes the scores (BG/NBD is some 30 microseconds a customer), off the profile
path. Pure: no I/O, no clock.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from rapport.shared.profiles import CustomerProfile
from rapport.shared.purchases import PurchaseSummary
from rapport.shared.scores import bgnbd
from rapport.shared.scores.compute import (
    DAYS_PER_WEEK,
    STANDARD_HORIZON_DAYS,
    Scores,
    ScoringPolicy,
    score,
)
from rapport.shared.scores.model import ClvModel
from rapport.shared.scores.population import ListPopulation
from rapport.shared.scores.profit import bounded

from .series import TOTAL, Dimension, SeriesKey, clean

DIMENSIONS = (Dimension.REGION, Dimension.CHANNEL, Dimension.SEGMENT, Dimension.TOTAL)
EVERYONE = f"{Dimension.TOTAL.value}:{TOTAL}"
BASIS = ("expected value over the next 90 days (BG/NBD expected orders x Gamma-Gamma "
         "order value, weighted by P(alive)), then P(alive)")
_POLICY = ScoringPolicy()
_NOBODY = ListPopulation({})
"""Standings are not ranked by: scoring against no population is enough (and cheap)."""


def name(dimension: Dimension, value: str) -> str:
    """The name of the set of one region, channel, segment or of everyone."""
    return f"{dimension.value}:{value}"


def of_series(series: SeriesKey) -> str | None:
    """The set whose customers answer a spike of this series, if it has one."""
    return name(series.dimension, series.value) if series.dimension in DIMENSIONS else None


def rank_score(ev_90d: float, p_alive: float) -> float:
    """One number ordering (expected value in cents, then P(alive)): P(alive) / 1000 is
    below a cent, so it only orders customers of the same expected value."""
    return round(ev_90d, 2) + min(max(p_alive, 0.0), 1.0) / 1000


def scores_of(profile: CustomerProfile, as_of: datetime, model: ClvModel,
              policy: ScoringPolicy | None = None) -> Scores:
    """The customer's scores, as the scoring service computes them (value tier and RFM
    standings against no population: they are not what is ranked)."""
    return score(profile, as_of, model, _NOBODY, policy or _POLICY)


def response(s: Scores) -> float:
    return rank_score(s.clv.expected_value_90d, s.clv.p_alive)


@dataclass(frozen=True)
class Point:
    """What a customer's place in the reach sets is computed from (stage 2 picks it)."""

    sets: tuple[str, ...]
    as_of_s: float
    summary: PurchaseSummary | None
    last_seen_s: float | None

    def to_json(self) -> list[Any]:
        s = self.summary
        return [list(self.sets), self.as_of_s, self.last_seen_s,
                None if s is None else [s.as_of_day, s.purchase_days, s.first_day,
                                        s.last_day, s.first_value, s.total_value]]

    @classmethod
    def from_json(cls, raw: list[Any]) -> Point:
        sets, as_of_s, seen, s = raw
        return cls(tuple(str(x) for x in sets), float(as_of_s),
                   None if s is None else PurchaseSummary(
                       int(s[0]), int(s[1]), int(s[2]), int(s[3]), float(s[4]), float(s[5])),
                   None if seen is None else float(seen))


def point_of(profile: CustomerProfile, as_of: datetime,
             regions: Iterable[str] = ()) -> Point:
    seen = profile.metrics.last_seen
    if seen is not None and seen.tzinfo is None:
        seen = seen.replace(tzinfo=UTC)
    return Point(tuple(sorted(memberships(profile, regions))), as_of.timestamp(),
                 profile.purchases.summary(as_of), None if seen is None else seen.timestamp())


def value_of(point: Point, model: ClvModel,
             policy: ScoringPolicy | None = None) -> tuple[float, float]:
    """(expected value over 90 days, P(alive)) exactly as :func:`scores_of` gives them."""
    policy = policy or _POLICY
    s = point.summary
    if s is None:
        if point.last_seen_s is None:
            return 0.0, 0.0
        idle = max(0.0, (point.as_of_s - point.last_seen_s) / 86400)
        return 0.0, round(0.5 ** (idle / policy.prospect_half_life_days), 4)
    bg, gg = model.bgnbd.params(), model.gamma_gamma.params()
    x, t_x, big_t = s.frequency, s.recency_weeks, s.age_weeks
    aov = bgnbd.expected_order_value(x, s.mean_repeat_value, gg)
    orders = bgnbd.expected_purchases(x, t_x, big_t, STANDARD_HORIZON_DAYS / DAYS_PER_WEEK, bg)
    return (round(bounded(orders * aov), 2),
            round(bgnbd.p_alive(x, t_x, big_t, bg), 4))


def points(profiles: Mapping[str, CustomerProfile], regions: Mapping[str, set[str]],
           as_of: datetime) -> dict[str, Point]:
    """Customer -> their point, for the profiles a batch changed (stage 2)."""
    return {pid: point_of(p, as_of, regions.get(pid, ())) for pid, p in profiles.items()}


def memberships(profile: CustomerProfile, regions: Iterable[str] = ()) -> set[str]:
    """The sets a customer belongs in: their region trait and the regions of the
    demand they made in this batch, the channels they use, their segments, everyone."""
    out = {EVERYONE}
    out.update(name(Dimension.REGION, r) for r in
               {*regions, clean(profile.traits.get("region"))} if r)
    out.update(name(Dimension.CHANNEL, c) for c in profile.channels)
    out.update(name(Dimension.SEGMENT, s) for s in profile.segments)
    return out


def additions(found: Mapping[str, Point], model: ClvModel) -> dict[str, dict[str, float]]:
    """Set name -> customer -> rank score (demand counting, with the model in use)."""
    out: dict[str, dict[str, float]] = {}
    for pid, point in found.items():
        value = rank_score(*value_of(point, model))
        for set_name in point.sets:
            out.setdefault(set_name, {})[pid] = value
    return out


def removals(profiles: Mapping[str, CustomerProfile],
             before: Mapping[str, Iterable[str]]) -> dict[str, set[str]]:
    """Set name -> customers who left a segment in this batch."""
    out: dict[str, set[str]] = {}
    for pid, profile in profiles.items():
        for segment in set(before.get(pid, ())) - set(profile.segments):
            out.setdefault(name(Dimension.SEGMENT, segment), set()).add(pid)
    return out


def belongs(profile: CustomerProfile, set_name: str) -> bool:
    """Whether a candidate still belongs (a set may hold a member who left a segment or
    stopped being one; a region is where they were seen, which a profile does not keep)."""
    dimension, _, value = set_name.partition(":")
    if dimension == Dimension.CHANNEL.value:
        return value in profile.channels
    if dimension == Dimension.SEGMENT.value:
        return value in profile.segments
    return True


def rank(set_name: str, profiles: Mapping[str, CustomerProfile | None],
         scores: Mapping[str, Scores], *, limit: int) -> dict[str, Any]:
    """The customers (highest expected value first, those gone or no longer members
    skipped) and the segments they belong to, most represented first."""
    live = [(pid, s) for pid, s in scores.items()
            if (p := profiles.get(pid)) is not None and belongs(p, set_name)]
    live.sort(key=lambda c: (-c[1].clv.expected_value_90d, -c[1].clv.p_alive, c[0]))
    customers: list[dict[str, Any]] = []
    for pid, s in live[:limit]:
        profile = profiles[pid]
        assert profile is not None
        customers.append({
            "customer_id": pid, "expected_value_90d": s.clv.expected_value_90d,
            "p_alive": s.clv.p_alive, "churn_risk": s.churn_risk,
            "segments": sorted(profile.segments),
            "consents": {k: c.value for k, c in sorted(profile.consents.items())}})
    by_segment: dict[str, list[float]] = {}
    for c in customers:
        for segment in c["segments"]:
            by_segment.setdefault(segment, []).append(c["expected_value_90d"])
    segments = [{"segment": seg, "customers": len(found),
                 "share": round(len(found) / len(customers), 4),
                 "expected_value_90d": round(sum(found), 2)}
                for seg, found in by_segment.items()]
    segments.sort(key=lambda s: (-s["customers"], -s["expected_value_90d"], s["segment"]))
    return {"segments": segments, "customers": customers}
