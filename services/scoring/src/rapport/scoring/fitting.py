"""Maximum-likelihood fits of BG/NBD and Gamma-Gamma to a population's purchase summaries.

The scoring service refits on its whole population (a million customers and more) and then
reads the parameters at every request (:mod:`rapport.shared.scores.bgnbd`). So the fits are
vectorised log-likelihoods with analytic gradients, over log-parameters (positive by
construction), by L-BFGS-B; identical rows are fitted once with their count as weight, and
with purchase days counted by day most customers share their (x, t_x, T) with others.

A fit that is not trustworthy raises :class:`FitRejected` with a reason in plain words, and
the caller keeps the model it had: a bad fit never replaces a good one.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable, Iterable
from dataclasses import asdict, dataclass, field
from datetime import timedelta
from operator import attrgetter

import numpy as np
from scipy.optimize import minimize
from scipy.special import digamma, gammaln

from rapport.shared.purchases import EPOCH, PurchaseSummary
from rapport.shared.scores.bgnbd import BgNbdParams, GammaGammaParams

# Gamma-Gamma has three parameters; with fewer than this many repeat buyers (each one
# observation of a mean spend) the fit is noise, whatever the optimiser reports.
MIN_REPEAT_BUYERS = 10
# Fitted parameters outside this range are read as a failed fit (real populations give
# values between ~0.01 and ~100); the optimiser's own bounds are wider, so a fit that ran
# into them lands here.
PLAUSIBLE = (1e-4, 1e4)
_SEARCH = (math.log(1e-6), math.log(1e6))
_OPTIONS = {"maxiter": 2000, "ftol": 1e-13, "gtol": 1e-9}
_GRADIENT_OK = 1e-6  # of the mean log-likelihood per customer, in log-parameters


class FitRejected(ValueError):
    """A fit that must not replace the current model; ``reason`` says why, plainly."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


@dataclass(frozen=True)
class Histories:
    """One row per customer with a purchase: repeat purchase days ``x``, recency ``t_x``
    and age ``T`` in weeks, and the mean spend per repeat day (0 where x = 0)."""

    x: np.ndarray
    t_x: np.ndarray
    T: np.ndarray
    monetary: np.ndarray
    as_of_day: int | None = None  # for messages only

    def __post_init__(self) -> None:
        arrays = [np.asarray(getattr(self, n), dtype=float).ravel()
                  for n in ("x", "t_x", "T", "monetary")]
        if len({a.size for a in arrays}) != 1:
            raise ValueError("x, t_x, T and monetary must have one value per customer")
        x, t_x, big_t, m = arrays
        if not all(np.isfinite(a).all() for a in arrays):
            raise ValueError("histories must be finite")
        if (x < 0).any() or (x != np.round(x)).any():
            raise ValueError("x counts repeat purchase days: whole numbers >= 0")
        if (t_x < 0).any() or (t_x > big_t + 1e-9).any() or (m < 0).any():
            raise ValueError("need 0 <= t_x <= T and monetary >= 0")
        for name, a in zip(("x", "t_x", "T", "monetary"), arrays, strict=True):
            a.flags.writeable = False
            object.__setattr__(self, name, a)

    @classmethod
    def from_summaries(cls, summaries: Iterable[PurchaseSummary | None]) -> Histories:
        """From summaries as ``PurchaseHistory.summary`` gives them (None: no purchase yet,
        skipped: the models describe customers from their first purchase on)."""
        kept = [s for s in summaries if s is not None]
        if not kept:
            return cls(*(np.zeros(0) for _ in range(4)))

        def column(name: str) -> np.ndarray:  # one pass per field: ~0.1 s per million
            return np.fromiter(map(attrgetter(name), kept), dtype=float, count=len(kept))

        days, first, last, as_of, first_value, total = map(column, (
            "purchase_days", "first_day", "last_day", "as_of_day", "first_value",
            "total_value"))
        # as PurchaseSummary's properties have it, for all rows at once
        x = days - 1.0
        m = np.divide(np.maximum(total - first_value, 0.0), x, out=np.zeros(x.size),
                      where=x > 0)
        common = int(as_of[0]) if (as_of == as_of[0]).all() else None
        return cls(x, (last - first) / 7.0, (as_of - first) / 7.0, m, as_of_day=common)

    def __len__(self) -> int:
        return int(self.x.size)

    def as_of(self) -> str:
        day = "" if self.as_of_day is None else str(EPOCH + timedelta(days=self.as_of_day))
        return f" as of {day}" if day else ""


@dataclass(frozen=True)
class Diagnostics:
    """How a fit went, for logs and the model's metadata."""

    converged: bool
    iterations: int
    log_likelihood: float
    duration_s: float
    message: str
    rows: int  # distinct rows the likelihood was evaluated on

    def as_dict(self) -> dict[str, object]:
        return asdict(self)


@dataclass(frozen=True)
class ClvFit:
    """Both models as fitted together, with how many customers they describe."""

    bgnbd: BgNbdParams
    gamma_gamma: GammaGammaParams
    customers: int
    repeat_buyers: int
    diagnostics: dict[str, object] = field(default_factory=dict)  # JSON-serialisable


def _compress(*columns: np.ndarray) -> tuple[list[np.ndarray], np.ndarray]:
    """The distinct rows of ``columns`` and how often each occurs (a lexsort: faster than
    ``np.unique(axis=0)`` on a million rows)."""
    order = np.lexsort(columns[::-1])
    sorted_cols = [c[order] for c in columns]
    change = np.ones(order.size, dtype=bool)
    change[1:] = np.any([c[1:] != c[:-1] for c in sorted_cols], axis=0)
    starts = np.flatnonzero(change)
    counts = np.diff(np.append(starts, order.size)).astype(float)
    return [c[starts] for c in sorted_cols], counts


def _by_x(x: np.ndarray, w: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """The distinct x, each row's index into them, and the weight of each: terms that
    depend on x alone (the costly gammaln and digamma) are computed once per x."""
    ux, inv = np.unique(x, return_inverse=True)
    return ux, inv, np.bincount(inv, weights=w, minlength=ux.size)


def _bgnbd_objective(x, t_x, big_t, w):
    """Mean negative log-likelihood of BG/NBD (FHL 2005 eq. 6) and its gradient in
    log-parameters."""
    ux, inv, wx = _by_x(x, w)
    has = x > 0
    rx = x[has]
    t_has, w_has = t_x[has], w[has]
    total = w.sum()

    def f(theta):
        r, alpha, a, b = np.exp(theta)
        log_at = np.log(alpha + big_t)
        a3 = -(r + x) * log_at
        # A4 only for repeat buyers (log(b + x - 1) per distinct x)
        log_b = np.log(b + np.maximum(ux, 1.0) - 1)
        log_ax = np.log(alpha + t_has)
        a4 = math.log(a) - log_b[inv[has]] - (r + rx) * log_ax
        a3h = a3[has]
        top = np.maximum(a3h, a4)
        e3, e4 = np.exp(a3h - top), np.exp(a4 - top)
        s = e3 + e4
        w3h, w4 = e3 / s, e4 / s
        per_x = (gammaln(r + ux) - gammaln(r) + r * math.log(alpha) + gammaln(a + b)
                 + gammaln(b + ux) - gammaln(b) - gammaln(a + b + ux))
        ll = (wx @ per_x + w[~has] @ a3[~has] + w_has @ (top + np.log(s)))
        w3 = np.ones_like(x)
        w3[has] = w3h  # weight of "alive" in each row's likelihood (1 without repeats)
        dab = digamma(a + b) - digamma(a + b + ux)
        grad = np.array([
            wx @ (digamma(r + ux) - digamma(r) + math.log(alpha))
            - w @ (w3 * log_at) - w_has @ (w4 * log_ax),
            total * r / alpha - w @ ((r + x) * w3 / (alpha + big_t))
            - w_has @ ((r + rx) * w4 / (alpha + t_has)),
            wx @ dab + (w_has @ w4) / a,
            wx @ (dab + digamma(b + ux) - digamma(b)) - w_has @ (w4 * np.exp(-log_b[inv[has]])),
        ])
        return -ll / total, -grad * np.array([r, alpha, a, b]) / total

    return f


def _gamma_gamma_objective(x, m, w):
    """Mean negative log-likelihood of the mean spend m of x purchases under Gamma-Gamma
    (Fader, Hardie & Lee 2005, "RFM and CLV"), and its gradient in log-parameters."""
    ux, _, wx = _by_x(x, w)
    log_m, total = np.log(m), w.sum()
    wx_log_x, w_log_m = wx @ (ux * np.log(ux)), w @ log_m  # sums of x log x, log m
    wxlogm = w @ (x * log_m)

    def f(theta):
        p, q, gamma = np.exp(theta)
        log_gm = np.log(gamma + x * m)
        pux = p * ux
        per_x = gammaln(pux + q) - gammaln(pux) - gammaln(q) + q * math.log(gamma)
        ll = (wx @ per_x + p * wxlogm - w_log_m + p * wx_log_x - w @ ((p * x + q) * log_gm))
        d_pq = digamma(pux + q)
        grad = np.array([
            wx @ (ux * (d_pq - digamma(pux))) + wxlogm + wx_log_x - w @ (x * log_gm),
            wx @ (d_pq - digamma(q)) + total * math.log(gamma) - w @ log_gm,
            total * q / gamma - w @ ((p * x + q) / (gamma + x * m)),
        ])
        return -ll / total, -grad * np.array([p, q, gamma]) / total

    return f


def _settled(res) -> bool:
    """Converged, or stopped where the gradient is nil to float precision (a line search
    finds no step from an optimum it started at: a warm start at the current model)."""
    return bool(res.success) or bool(np.isfinite(res.jac).all()
                                     and np.abs(res.jac).max() <= _GRADIENT_OK)


def _maximise(objective: Callable, start: np.ndarray, total: float, rows: int, what: str,
              names: str) -> tuple[np.ndarray, Diagnostics]:
    """The maximum, or FitRejected: for values gone astray (said first: a fit running off
    to infinity often does not converge either), for no convergence, for non-finite."""
    began = time.perf_counter()
    bounds = [_SEARCH] * start.size
    res = minimize(objective, start, jac=True, method="L-BFGS-B", bounds=bounds,
                   options=_OPTIONS)
    iterations = int(res.nit)
    if not _settled(res):  # a line search stalled on the way: once more, fresh memory
        res = minimize(objective, res.x, jac=True, method="L-BFGS-B", bounds=bounds,
                       options=_OPTIONS)
        iterations += int(res.nit)
    converged = _settled(res)
    diag = Diagnostics(converged=converged, iterations=iterations,
                       log_likelihood=float(-res.fun * total),
                       duration_s=round(time.perf_counter() - began, 4),
                       message=str(res.message) if res.success or not converged
                       else f"at the optimum: gradient under {_GRADIENT_OK:g}", rows=rows)
    values = np.exp(res.x)
    if not (np.isfinite(values).all() and math.isfinite(diag.log_likelihood)):
        raise FitRejected(f"the {what} fit gave non-finite values")
    _plausible(what, names, values)
    if not converged:
        raise FitRejected(f"the {what} fit did not converge ({diag.message})")
    return values, diag


def _plausible(what: str, names: str, values: np.ndarray) -> None:
    low, high = PLAUSIBLE
    wild = [f"{n}={v:.3g}" for n, v in zip(names.split(), values, strict=True)
            if not low <= v <= high]
    if wild:
        raise FitRejected(f"the {what} fit is implausible ({', '.join(wild)} outside "
                          f"[{low:g}, {high:g}]): the population does not look like "
                          f"the model's")


def fit_bgnbd(h: Histories, start: BgNbdParams | None = None,
              ) -> tuple[BgNbdParams, Diagnostics]:
    """BG/NBD by maximum likelihood; ``start`` (say, the current model) speeds a refit."""
    if len(h) == 0:
        raise FitRejected(f"no purchases in the population{h.as_of()}")
    if not (h.x > 0).any():
        raise FitRejected(f"no repeat purchases in the population{h.as_of()}: purchase "
                          f"rates and dropout cannot be estimated")
    (x, t_x, big_t), w = _compress(h.x, h.t_x, h.T)
    if start is None:  # rate about mean x / mean T, no dropout preference
        rate = max(float(h.x.mean()), 1e-3) / max(float(h.T.mean()), 1e-3)
        start = BgNbdParams(r=1.0, alpha=1.0 / rate, a=1.0, b=1.0)
    theta0 = np.log([start.r, start.alpha, start.a, start.b]).clip(*_SEARCH)
    values, diag = _maximise(_bgnbd_objective(x, t_x, big_t, w), theta0, w.sum(), w.size,
                             "BG/NBD", "r alpha a b")
    return BgNbdParams(*map(float, values)), diag


def fit_gamma_gamma(h: Histories, start: GammaGammaParams | None = None,
                    ) -> tuple[GammaGammaParams, Diagnostics]:
    """Gamma-Gamma on the repeat buyers with a positive mean spend."""
    buyers = (h.x > 0) & (h.monetary > 0)
    n = int(buyers.sum())
    if n < MIN_REPEAT_BUYERS:
        raise FitRejected(f"only {n} repeat buyers with spend in the population{h.as_of()}; "
                          f"the spend model needs at least {MIN_REPEAT_BUYERS}")
    (x, m), w = _compress(h.x[buyers], h.monetary[buyers])
    if start is None:
        start = GammaGammaParams(p=1.0, q=2.0, gamma=float(np.average(m, weights=w)))
    theta0 = np.log([start.p, start.q, start.gamma]).clip(*_SEARCH)
    values, diag = _maximise(_gamma_gamma_objective(x, m, w), theta0, w.sum(), w.size,
                             "Gamma-Gamma", "p q gamma")
    if values[1] <= 1:
        raise FitRejected(f"the Gamma-Gamma fit gives q={values[1]:.3g} <= 1: an infinite "
                          f"mean spend")
    return GammaGammaParams(*map(float, values)), diag


def _with_fallback(fit: Callable, h: Histories, start: object | None):
    """Warm-started from the current model when there is one; from the default start if
    that does not converge (a rejection for absurd values stands either way)."""
    try:
        return fit(h, start)
    except FitRejected as exc:
        if start is None or "did not converge" not in exc.reason:
            raise
    return fit(h, None)


def fit_clv(h: Histories, previous: ClvFit | None = None) -> ClvFit:
    """Both models on one population, or :class:`FitRejected` (keep ``previous`` then)."""
    began = time.perf_counter()
    if len(h) == 0:
        raise FitRejected(f"no purchases in the population{h.as_of()}")
    repeat_buyers = int(((h.x > 0) & (h.monetary > 0)).sum())
    if repeat_buyers < MIN_REPEAT_BUYERS:  # checked first: it is cheap and says more
        raise FitRejected(f"only {repeat_buyers} repeat buyers with spend in the "
                          f"population{h.as_of()}; the spend model needs at least "
                          f"{MIN_REPEAT_BUYERS}")
    bg, bg_diag = _with_fallback(fit_bgnbd, h, previous and previous.bgnbd)
    gg, gg_diag = _with_fallback(fit_gamma_gamma, h, previous and previous.gamma_gamma)
    return ClvFit(bgnbd=bg, gamma_gamma=gg, customers=len(h), repeat_buyers=repeat_buyers,
                  diagnostics={"bgnbd": bg_diag.as_dict(), "gamma_gamma": gg_diag.as_dict(),
                               "warm_start": previous is not None,
                               "duration_s": round(time.perf_counter() - began, 4)})
