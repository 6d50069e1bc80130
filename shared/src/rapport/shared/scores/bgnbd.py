"""BG/NBD and Gamma-Gamma as read at every score request: scalar, fast, always finite.

A customer is ``x`` repeat purchase days, the last ``t_x`` weeks after the first, seen for
``T`` weeks (see :class:`rapport.shared.purchases.PurchaseSummary`). The population
parameters come from a fit (``rapport.scoring.fitting``); these functions only read them.

The textbook forms raise ratios to the power ``r + x``, which no float holds for a heavy
buyer long silent, and divide by ``a - 1``. Here odds stay logarithms, Euler's
transformation of 2F1 cancels the large power exactly, and ``a`` near 1 is read through
the two sides of the (removable) singularity. Inputs are clamped to their meaningful
range (counts >= 0, 0 <= t_x <= T, times below :data:`TIME_LIMIT`) so that any profile,
however corrupt, scores as finite numbers.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from scipy.special import hyp2f1

TIME_LIMIT = 1e7  # weeks (~190,000 years): beyond it a time is corrupt data
COUNT_LIMIT = 10**9
MONEY_LIMIT = 1e12
_A_GAP = 1e-4  # |a - 1| below this is interpolated from a = 1 -/+ _A_GAP
_SERIES_TERMS = 20_000


def _positive(name: str, value: float) -> None:
    if not (isinstance(value, int | float) and math.isfinite(value) and value > 0):
        raise ValueError(f"{name} must be a finite number > 0, not {value!r}")


@dataclass(frozen=True)
class BgNbdParams:
    """Purchase rate lambda ~ Gamma(r, alpha) (alpha in weeks), dropout p ~ Beta(a, b).
    Defaults: the published CDNOW fit (Fader, Hardie & Lee 2005)."""

    r: float = 0.243
    alpha: float = 4.414
    a: float = 0.793
    b: float = 2.426

    def __post_init__(self) -> None:
        for name in ("r", "alpha", "a", "b"):
            _positive(name, getattr(self, name))


@dataclass(frozen=True)
class GammaGammaParams:
    """Spend per purchase ~ Gamma(p, nu), nu ~ Gamma(q, gamma). Defaults: the published
    CDNOW fit. q must exceed 1: at q <= 1 the mean spend is infinite, so no value can be
    read from the model (the fitter rejects such fits)."""

    p: float = 6.25
    q: float = 3.74
    gamma: float = 15.44

    def __post_init__(self) -> None:
        for name in ("p", "q", "gamma"):
            _positive(name, getattr(self, name))
        if self.q <= 1:
            raise ValueError(f"q must exceed 1 (the mean spend is infinite), not {self.q!r}")

    def mean_value(self) -> float:
        """The population's mean spend per purchase: p * gamma / (q - 1)."""
        return self.p * self.gamma / (self.q - 1)


def _time(value: float) -> float:
    return min(max(value, 0.0), TIME_LIMIT) if value == value else 0.0  # NaN -> 0


def _clean(x: int, t_x: float, big_t: float) -> tuple[int, float, float]:
    x = min(max(int(x), 0), COUNT_LIMIT)
    t_x = _time(t_x)
    return x, t_x, max(_time(big_t), t_x)


def _logistic(z: float) -> float:
    if z >= 0:
        return 1.0 / (1.0 + math.exp(-z))
    e = math.exp(z)
    return e / (1.0 + e)


def _dead_log_odds(x: int, t_x: float, big_t: float, p: BgNbdParams) -> float:
    """log(P(dead) / P(alive)); -inf when there was no repeat purchase to drop out after."""
    if x == 0:
        return -math.inf
    return (math.log(p.a) - math.log(p.b + x - 1)
            + (p.r + x) * math.log1p((big_t - t_x) / (p.alpha + t_x)))


def p_alive(x: int, t_x: float, big_t: float, params: BgNbdParams) -> float:
    """P(still active at T | x, t_x, T). 1 without repeat purchases: in BG/NBD a customer
    can only drop out right after a repeat purchase."""
    x, t_x, big_t = _clean(x, t_x, big_t)
    return _logistic(-_dead_log_odds(x, t_x, big_t, params))


def _per_alive(x: int, big_t: float, h: float, r: float, alpha: float, a: float,
               b: float) -> float:
    """E[purchases in (T, T+h] | alive at T]: the FHL (2005) eq. 10 numerator after Euler's
    transformation, (a+b+x-1)/(a-1) * (1 - (1-z)^(a-1) 2F1(a+b-1-r, a-1; a+b+x-1; z))."""
    z = h / (alpha + big_t + h)
    big_a, big_b, big_c = a + b - 1 - r, a - 1, a + b + x - 1
    rest = float(hyp2f1(big_a, big_b, big_c, z)) - 1
    if not math.isfinite(rest):  # scipy's 2F1 fails in places (inf at c - a - b integer)
        rest = _series_rest(big_a, big_b, big_c, z)
    log_power = (a - 1) * math.log1p(-z)
    return big_c / (a - 1) * (-math.expm1(log_power) - math.exp(log_power) * rest)


def _series_rest(big_a: float, big_b: float, big_c: float, z: float) -> float:
    """2F1(A, B; C; z) - 1 by its power series; NaN unless it converges in
    :data:`_SERIES_TERMS` terms (z not too near 1)."""
    term, total = 1.0, 0.0
    for k in range(_SERIES_TERMS):
        if big_c + k == 0:  # a pole of 2F1: no value
            break
        term *= (big_a + k) * (big_b + k) / ((big_c + k) * (k + 1)) * z
        total += term
        if abs(term) <= 1e-17 * abs(total) or term == 0.0:
            return total
        if not math.isfinite(total):
            break
    return math.nan


def _per_alive_across_c(x: int, big_t: float, h: float, r: float, alpha: float, a: float,
                        b: float) -> float:
    """:func:`_per_alive` across its other removable singularity, C = a + b + x - 1 = 0
    (no repeat purchase and a + b = 1: 2F1 has a pole there, which the factor C cancels),
    linear between C = -/+ _A_GAP, reached by moving b."""
    c = a + b + x - 1
    if abs(c) >= _A_GAP:
        return _per_alive(x, big_t, h, r, alpha, a, b)
    # Both sides where b allows; else (b itself ~ _A_GAP) from C = _A_GAP and 2 _A_GAP.
    near, far = (-_A_GAP, _A_GAP) if b - c - _A_GAP > 0 else (_A_GAP, 2 * _A_GAP)
    lo = _per_alive(x, big_t, h, r, alpha, a, b - c + near)
    hi = _per_alive(x, big_t, h, r, alpha, a, b - c + far)
    return lo + (hi - lo) * (c - near) / (far - near)


def expected_purchases(x: int, t_x: float, big_t: float, horizon_weeks: float,
                       params: BgNbdParams) -> float:
    """E[X(T, T+h] | x, t_x, T], purchases expected in the next ``horizon_weeks``.

    Never above P(alive) * E[lambda | alive] * h = P(alive) (r+x)/(alpha+T) h, the same
    customer without dropout. That bound also stands in where neither scipy's 2F1 nor its
    series gives a value: seen only with extreme parameters (a ~ 100) and z within ~1e-3 of 1
    (a horizon hundreds of times the customer's age), where it overstates."""
    x, t_x, big_t = _clean(x, t_x, big_t)
    h = _time(horizon_weeks)
    if h == 0.0:
        return 0.0
    r, alpha, a, b = params.r, params.alpha, params.a, params.b
    alive = _logistic(-_dead_log_odds(x, t_x, big_t, params))
    if abs(a - 1) < _A_GAP:  # removable singularity: linear between its two sides
        lo = _per_alive_across_c(x, big_t, h, r, alpha, 1 - _A_GAP, b)
        hi = _per_alive_across_c(x, big_t, h, r, alpha, 1 + _A_GAP, b)
        per_alive = lo + (hi - lo) * (a - (1 - _A_GAP)) / (2 * _A_GAP)
    else:
        per_alive = _per_alive_across_c(x, big_t, h, r, alpha, a, b)
    bound = (r + x) / (alpha + big_t) * h
    if not math.isfinite(per_alive) or per_alive < 0:
        per_alive = bound
    return alive * min(per_alive, bound)


def p_no_purchase(x: int, t_x: float, big_t: float, horizon_weeks: float,
                  params: BgNbdParams) -> float:
    """P(no purchase in (T, T+h] | x, t_x, T) = (1 - P(alive)) + P(alive) * E[e^(-lambda h)].

    Given alive, lambda ~ Gamma(r+x, alpha+T), and no dropout can come before the next
    purchase, so E[e^(-lambda h)] = ((alpha+T)/(alpha+T+h))^(r+x). The odds and the power
    stay logarithms (no overflow), and the sum is formed from whichever side is small (no
    cancellation), so it stays in [0, 1] for any input and is exactly 1 at h = 0."""
    x, t_x, big_t = _clean(x, t_x, big_t)
    h = _time(horizon_weeks)
    log_odds = _dead_log_odds(x, t_x, big_t, params)
    dead = _logistic(log_odds)
    alive = _logistic(-log_odds)
    log_silent = -(params.r + x) * math.log1p(h / (params.alpha + big_t))
    buys = alive * -math.expm1(log_silent)  # P(alive and a purchase in the horizon)
    if buys < 0.5:  # 1 - buys is exact enough here, and exactly 1 at h = 0
        return 1.0 - buys
    return min(1.0, dead + alive * math.exp(log_silent))  # both small: no cancellation


def expected_order_value(x: int, mean_value: float, params: GammaGammaParams) -> float:
    """E[spend per purchase | x repeat purchases averaging ``mean_value``] (Fader, Hardie &
    Lee 2005, "RFM and CLV", eq. 5): p (gamma + x m) / (p x + q - 1), a weighting of the
    population mean p gamma / (q - 1) (all of it at x = 0) and the customer's own mean.
    An unknown (NaN) or negative mean reads as no purchase history of its own."""
    x = min(max(int(x), 0), COUNT_LIMIT)
    if not mean_value == mean_value or mean_value < 0:  # NaN or negative
        x, mean_value = 0, 0.0
    m = min(mean_value, MONEY_LIMIT)
    p, q, gamma = params.p, params.q, params.gamma
    return p * (gamma + x * m) / (p * x + q - 1)
