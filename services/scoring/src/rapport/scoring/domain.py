"""Customer scores as pure functions of a profile and a point in time.

RFM uses fixed, documented thresholds; lifetime value uses the BG/NBD model
(Fader, Hardie & Lee 2005) with population parameters that later issues fit
from the data (the defaults are the published CDNOW fit, in weeks).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from datetime import datetime

from pydantic import BaseModel
from scipy.special import expit, hyp2f1

from rapport.shared.profiles import CustomerProfile

DAYS_PER_WEEK = 7.0
HORIZON_DAYS = 90
# Metrics beyond these are corrupt data (or an attack): scores read them as these bounds,
# so every score stays a finite JSON number (pydantic writes inf and NaN as null).
MONEY_LIMIT = 1e12
COUNT_LIMIT = 10**9


@dataclass(frozen=True)
class BgNbdParams:
    r: float = 0.243
    alpha: float = 4.414
    a: float = 0.793
    b: float = 2.426


@dataclass(frozen=True)
class ScoringPolicy:
    bgnbd: BgNbdParams = BgNbdParams()
    default_order_value: float = 50.0
    cost_per_service_contact: float = 5.0
    activity_half_life_days: float = 30.0


RECENCY_DAYS = (7, 30, 90, 180)          # <= bound -> 5, 4, 3, 2; else 1
FREQUENCY = (2, 3, 5, 10)                 # >= bound -> 2, 3, 4, 5; else 1
MONETARY = (100.0, 500.0, 1000.0, 2000.0)  # >= bound -> 2, 3, 4, 5; else 1


class RfmScore(BaseModel):
    r: int
    f: int
    m: int
    label: str


class Clv(BaseModel):
    expected_orders_90d: float
    expected_value_90d: float
    p_alive: float


class Scores(BaseModel):
    customer_id: str
    rfm: RfmScore
    clv: Clv
    churn_risk: float
    value_tier: str
    profit: float
    computed_at: datetime


def r_score(recency_days: float | None) -> int:
    if recency_days is None:
        return 1
    for score, bound in zip((5, 4, 3, 2), RECENCY_DAYS, strict=True):
        if recency_days <= bound:
            return score
    return 1


def _up_score(value: float, bounds: tuple[float, ...]) -> int:
    return 1 + sum(1 for b in bounds if value >= b)


def rfm_label(r: int, f: int, m: int) -> str:
    if r >= 4 and f >= 4:
        return "champion"
    if f >= 3 and r >= 3:
        return "loyal"
    if r >= 4 and f <= 2:
        return "new" if f == 1 else "promising"
    if r <= 2 and f >= 3:
        return "at_risk"
    if r <= 2 and m >= 4:
        return "cannot_lose"
    if r <= 1:
        return "hibernating"
    return "needs_attention"


def bgnbd(x: int, t_x: float, big_t: float, horizon: float,
          p: BgNbdParams) -> tuple[float, float]:
    """(P(alive), expected purchases in ``horizon``) for ``x`` repeat purchases, the last
    at ``t_x``, observed for ``big_t``; all times in weeks.

    The textbook form raises ``(alpha+T)/(alpha+t_x)`` and the hypergeometric term to the
    power ``r+x``, which no float holds for a heavy buyer long silent (700 orders at one
    backdated instant). Here the odds stay logarithms (P(alive) is their logistic), and
    Euler's transformation ``2F1(a,b;c;z) = (1-z)^(c-a-b) 2F1(c-a,c-b;c;z)`` cancels the
    power exactly, leaving ``(1-z)^(a-1) 2F1(a+b-1-r, a-1; a+b+x-1; z)``, whose terms stay
    small for any ``x``. Equal to the textbook form (to ~1e-11) wherever that is finite.
    """
    r, alpha, a, b = p.r, p.alpha, p.a, p.b
    x = max(0, x)
    t_x = max(0.0, t_x)
    big_t = max(big_t, t_x, 1e-9)
    if x > 0:
        log_odds = (math.log(a) - math.log(b + x - 1)
                    + (r + x) * math.log1p((big_t - t_x) / (alpha + t_x)))
        p_alive = float(expit(-log_odds))  # 1 / (1 + e^log_odds), without overflow
    else:
        p_alive = 1.0
    z = horizon / (alpha + big_t + horizon)
    head = (a + b + x - 1) / (a - 1)
    tail = 1 - math.exp((a - 1) * math.log1p(-z)) * float(
        hyp2f1(a + b - 1 - r, a - 1, a + b + x - 1, z))
    expected = head * tail * p_alive
    if not math.isfinite(expected):
        # Parameters far from any fit (hyp2f1 undefined): the posterior purchase rate
        # over the horizon, assuming no dropout in it, an upper bound of the model's value.
        expected = p_alive * (r + x) / (alpha + big_t) * horizon
    return _bounded(p_alive, 0.0, 1.0), _bounded(expected, 0.0, float(COUNT_LIMIT))


def _bounded(value: float, low: float, high: float) -> float:
    """``value`` within [low, high]; NaN (no meaning left) reads as the bound nearest 0."""
    if math.isnan(value):
        return min(max(0.0, low), high)
    return min(max(value, low), high)


def _money(value: float) -> float:
    return _bounded(value, -MONEY_LIMIT, MONEY_LIMIT)


def _count(value: int) -> int:
    return min(max(value, -COUNT_LIMIT), COUNT_LIMIT)


def score(profile: CustomerProfile, now: datetime, policy: ScoringPolicy = ScoringPolicy(),
          ) -> Scores:
    m = profile.metrics
    raw = profile.rfm(now)
    orders = _count(m.orders)
    r, f, mm = r_score(raw.recency_days), _up_score(orders, FREQUENCY), \
        _up_score(_money(raw.monetary), MONETARY)

    def weeks(delta_from: datetime | None, to: datetime) -> float:
        return 0.0 if delta_from is None else max(0.0, (to - delta_from).total_seconds()) / 86400 \
            / DAYS_PER_WEEK

    birth = m.first_order_at or m.first_seen
    x = max(0, orders - 1)
    t_x = weeks(m.first_order_at, m.last_order_at) if m.last_order_at else 0.0
    big_t = weeks(birth, now)
    p_alive, orders_90d = bgnbd(x, t_x, big_t, HORIZON_DAYS / DAYS_PER_WEEK, policy.bgnbd)
    if orders <= 0:
        # No purchase yet: alive-ness is read from activity, decaying with inactivity.
        idle = 0.0 if m.last_seen is None else max(0.0, (now - m.last_seen).total_seconds()) / 86400
        p_alive = 0.5 ** (idle / policy.activity_half_life_days)
    revenue = _money(m.revenue)
    aov = max(0.0, revenue / orders) if orders > 0 else policy.default_order_value
    # Segment's revenue is already net of discounts; refunds and service contacts are not.
    profit = _money(revenue - _money(m.returned_value)
                    - _count(m.service_contacts) * policy.cost_per_service_contact)
    if profit < 0 or (r <= 1 and f <= 1):
        tier = "worst"
    elif r + f + mm >= 12 or profit >= MONETARY[-1]:
        tier = "best"
    else:
        tier = "average"
    return Scores(
        customer_id=profile.customer_id,
        rfm=RfmScore(r=r, f=f, m=mm, label=rfm_label(r, f, mm)),
        clv=Clv(expected_orders_90d=round(orders_90d, 4),
                expected_value_90d=round(_bounded(orders_90d * aov, 0.0, MONEY_LIMIT), 2),
                p_alive=round(p_alive, 4)),
        churn_risk=round(min(1.0, max(0.0, 1.0 - p_alive)), 4),
        value_tier=tier,
        profit=round(profit, 2),
        computed_at=now,
    )


def propensity(accepted: int, decided: int, prior_rate: float = 0.05,
               prior_weight: float = 20.0) -> float:
    """Posterior mean acceptance rate under a Beta prior (shrinks small samples)."""
    alpha = prior_rate * prior_weight + accepted
    beta = (1 - prior_rate) * prior_weight + max(0, decided - accepted)
    value = alpha / (alpha + beta)
    return value if math.isfinite(value) else prior_rate
