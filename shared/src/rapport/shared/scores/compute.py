"""Every score of one customer at one moment, from the profile and the models in use.

Nothing here is stored: scores are computed when asked, for the moment asked
(``as_of``), so recency, P(alive), churn risk and the tier move with time without any
event, and the scores API and next-action, calling this same function with the same
models, give the same numbers. Pure: no I/O, no clock.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from datetime import UTC, datetime

from pydantic import BaseModel

from rapport.shared.profiles import CustomerProfile
from rapport.shared.purchases import PurchaseSummary, day_before, day_of, purchases_between

from . import bgnbd, churn, rfm
from .model import ClvModel
from .profit import ProfitPolicy, bounded, profit

DAYS_PER_WEEK = 7.0
STANDARD_HORIZON_DAYS = 90
SIGNAL_WINDOW_DAYS = 90


@dataclass(frozen=True)
class ScoringPolicy:
    profit: ProfitPolicy = field(default_factory=ProfitPolicy)
    churn: churn.ChurnWeights = field(default_factory=churn.ChurnWeights)
    best_share: float = 0.20
    """Share of buyers in the best tier (the top by value)."""
    worst_share: float = 0.20
    """Share of buyers in the worst tier (the bottom by value)."""
    prospect_half_life_days: float = 30.0
    """How fast a never-buying visitor's P(alive) halves with inactivity."""


class RfmOut(BaseModel):
    r: int
    f: int
    m: int
    label: str
    recency_days: int | None
    frequency: int
    monetary: float


class ClvOut(BaseModel):
    expected_orders_90d: float
    expected_value_90d: float
    p_alive: float
    expected_order_value: float
    horizon_days: int | None = None
    expected_orders: float | None = None
    expected_value: float | None = None


class ProfitOut(BaseModel):
    revenue: float
    cost_of_goods: float
    discounts: float
    returns: float
    cost_to_serve: float
    expected_future_profit_90d: float


class Scores(BaseModel):
    customer_id: str
    as_of: datetime
    rfm: RfmOut
    clv: ClvOut
    churn_risk: float
    value_tier: str
    profit: float
    value: float
    """Profit so far plus expected profit in the next 90 days: what the tier ranks."""
    profit_details: ProfitOut
    model_version: str
    reasons: dict[str, list[str]]


@dataclass(frozen=True)
class Point:
    """Where a customer stands in the population sketches (see population)."""

    last_day: int
    purchase_days: int
    total: float
    value: float


def _plural(n: int, word: str) -> str:
    return f"{n} {word}{'' if n == 1 else 's'}"


def _signals(profile: CustomerProfile, summary: PurchaseSummary | None,
             as_of_day: int) -> churn.ChurnSignals:
    """The last 90 days' service signals, and the fall in the customer's own purchase
    rate (purchase days in the window against their rate before it)."""
    recent = [kind for day, kind in profile.signals
              if as_of_day - SIGNAL_WINDOW_DAYS < day <= as_of_day]
    drop = 0.0
    if summary is not None:
        start = as_of_day - SIGNAL_WINDOW_DAYS
        lately = purchases_between(profile.purchases, start, as_of_day)
        repeats_before = summary.purchase_days - lately - 1  # the first day is no repeat
        drop = churn.frequency_drop(lately, repeats_before, (start - summary.first_day) / 7.0)
    return churn.ChurnSignals(
        complaints=recent.count("complaint"), refunds=recent.count("refund"),
        unresolved_contacts=recent.count("unresolved_call") + recent.count("ticket"),
        frequency_drop=drop)


def _tier(value: float, buyer: bool, population: rfm.Population,
          policy: ScoringPolicy) -> tuple[str, float | None]:
    if not buyer or population.size(rfm.VALUE) == 0:
        return ("worst" if value < 0 else "average"), None
    share = rfm.standing(population, rfm.VALUE, value)
    if share >= 1 - policy.best_share:
        return "best", share
    return ("worst" if share < policy.worst_share else "average"), share


def score(profile: CustomerProfile, as_of: datetime, model: ClvModel,
          population: rfm.Population, policy: ScoringPolicy = ScoringPolicy(),
          horizon_days: int | None = None) -> Scores:
    as_of = as_of if as_of.tzinfo else as_of.replace(tzinfo=UTC)
    today = day_before(as_of)
    summary = profile.purchases.summary(as_of)
    bg, gg = model.bgnbd.params(), model.gamma_gamma.params()
    m = profile.metrics
    reasons: dict[str, list[str]] = {"rfm": [], "clv": [], "churn": [], "value": []}

    if summary is not None:
        x, t_x, big_t = summary.frequency, summary.recency_weeks, summary.age_weeks
        p_alive = bgnbd.p_alive(x, t_x, big_t, bg)
        aov = bgnbd.expected_order_value(x, summary.mean_repeat_value, gg)

        def orders(days: int) -> float:
            return bgnbd.expected_purchases(x, t_x, big_t, days / DAYS_PER_WEEK, bg)

        horizon = horizon_days or STANDARD_HORIZON_DAYS
        base = bgnbd.p_no_purchase(x, t_x, big_t, horizon / DAYS_PER_WEEK, bg)
        risk, why = churn.churn_risk(base, _signals(profile, summary, today), policy.churn,
                                     horizon_days=horizon)
        revenue_share = summary.total_value / m.revenue if m.revenue > 0 else 1.0
        reasons["rfm"].append(
            f"bought on {_plural(summary.purchase_days, 'day')}, the last "
            f"{_plural(summary.days_since_last, 'day')} ago; spent {summary.total_value:.2f}")
        reasons["clv"].append(f"P(alive) {p_alive:.2f}; about {orders(90):.2f} purchases "
                              f"expected in 90 days at {aov:.2f} each")
    else:
        seen = m.last_seen if m.last_seen is None or m.last_seen.tzinfo else \
            m.last_seen.replace(tzinfo=UTC)
        idle = None if seen is None else max(0.0, (as_of - seen).total_seconds() / 86400)
        p_alive = 0.0 if idle is None else 0.5 ** (idle / policy.prospect_half_life_days)
        aov = gg.mean_value() if gg.q > 1 else 0.0

        def orders(days: int) -> float:
            return 0.0

        risk, why = 1.0 - p_alive, ["no purchase yet"]
        revenue_share = 0.0
        reasons["clv"].append("no purchase yet: no lifetime value expected")
    reasons["churn"].extend(why)

    p = profit(m, policy.profit, revenue_share)
    future = bounded(orders(STANDARD_HORIZON_DAYS) * aov * p.margin_rate)
    value = bounded(p.profit + future)
    score_rfm = rfm.rfm(summary and summary.last_day, summary.purchase_days if summary else 0,
                        summary.total_value if summary else 0.0, population)
    tier, share = _tier(value, summary is not None, population, policy)
    reasons["rfm"].insert(0, f"{score_rfm.label.replace('_', ' ')}: "
                             f"{rfm.SEGMENTS.get(score_rfm.label, 'has not bought yet')}")
    reasons["value"].append(
        f"profit {p.profit:.2f} so far, {future:.2f} expected in 90 days"
        + ("" if share is None else f"; top {max(1, math.ceil((1 - share) * 100))}% by value"))

    clv = ClvOut(expected_orders_90d=round(orders(90), 4),
                 expected_value_90d=round(bounded(orders(90) * aov), 2),
                 p_alive=round(p_alive, 4), expected_order_value=round(aov, 2))
    if horizon_days is not None:
        clv.horizon_days = horizon_days
        clv.expected_orders = round(orders(horizon_days), 4)
        clv.expected_value = round(bounded(orders(horizon_days) * aov), 2)
    return Scores(
        customer_id=profile.customer_id, as_of=as_of,
        rfm=RfmOut(r=score_rfm.r, f=score_rfm.f, m=score_rfm.m, label=score_rfm.label,
                   recency_days=summary.days_since_last if summary else None,
                   frequency=summary.purchase_days if summary else 0,
                   monetary=summary.total_value if summary else 0.0),
        clv=clv, churn_risk=round(min(1.0, max(0.0, risk)), 4), value_tier=tier,
        profit=round(p.profit, 2), value=round(value, 2),
        profit_details=ProfitOut(revenue=round(p.revenue, 2),
                                 cost_of_goods=round(p.cost_of_goods, 2),
                                 discounts=round(p.discounts, 2), returns=round(p.returns, 2),
                                 cost_to_serve=round(p.cost_to_serve, 2),
                                 expected_future_profit_90d=round(future, 2)),
        model_version=model.version, reasons=reasons)


def point(profile: CustomerProfile, scores: Scores) -> Point | None:
    """The customer's point in the population sketches (None without a purchase)."""
    summary = profile.purchases.summary(scores.as_of)
    if summary is None:
        return None
    return Point(last_day=summary.last_day, purchase_days=summary.purchase_days,
                 total=summary.total_value, value=scores.value)


__all__ = ["Point", "Scores", "ScoringPolicy", "day_of", "point", "score"]
