"""Maximum-likelihood fits of BG/NBD and Gamma-Gamma on a population's histories.

(Interim version: the full one with gradients and its own tests replaces it.)
"""

from __future__ import annotations

import math
import time
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

import numpy as np
from scipy.optimize import minimize
from scipy.special import gammaln

from rapport.shared.purchases import PurchaseSummary
from rapport.shared.scores.bgnbd import BgNbdParams, GammaGammaParams

MIN_REPEAT_BUYERS = 10
BOUNDS = (1e-4, 1e4)


class FitRejected(ValueError):
    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


@dataclass(frozen=True)
class Histories:
    x: np.ndarray
    t_x: np.ndarray
    T: np.ndarray
    monetary: np.ndarray

    @classmethod
    def from_summaries(cls, summaries: Iterable[PurchaseSummary]) -> Histories:
        rows = [(s.frequency, s.recency_weeks, s.age_weeks, s.mean_repeat_value)
                for s in summaries]
        arr = np.array(rows, dtype=float).reshape(-1, 4)
        return cls(arr[:, 0], arr[:, 1], arr[:, 2], arr[:, 3])

    def __len__(self) -> int:
        return len(self.x)


@dataclass(frozen=True)
class ClvFit:
    bgnbd: BgNbdParams
    gamma_gamma: GammaGammaParams
    customers: int
    repeat_buyers: int
    diagnostics: dict[str, Any] = field(default_factory=dict)


def _bgnbd_nll(lp: np.ndarray, x, tx, T, w) -> float:
    r, al, a, b = np.exp(lp)
    a1 = gammaln(r + x) - gammaln(r) + r * np.log(al)
    a2 = gammaln(a + b) + gammaln(b + x) - gammaln(b) - gammaln(a + b + x)
    a3 = -(r + x) * np.log(al + T)
    with np.errstate(divide="ignore", invalid="ignore"):
        a4 = np.where(x > 0, np.log(a) - np.log(np.maximum(b + x - 1, 1e-300))
                      - (r + x) * np.log(al + tx), -np.inf)
    return float(-(w * (a1 + a2 + np.logaddexp(a3, a4))).sum())


def _gg_nll(lp: np.ndarray, x, m) -> float:
    p, q, g = np.exp(lp)
    px = p * x
    return float(-(gammaln(px + q) - gammaln(px) - gammaln(q) + q * np.log(g)
                   + (px - 1) * np.log(m) + px * np.log(x) - (px + q) * np.log(x * m + g)).sum())


def _check(name: str, values: dict[str, float]) -> None:
    for key, v in values.items():
        if not math.isfinite(v) or not BOUNDS[0] <= v <= BOUNDS[1]:
            raise FitRejected(f"{name} parameter {key} = {v:.4g} is outside "
                              f"[{BOUNDS[0]}, {BOUNDS[1]}]: not a usable fit")


def _minimise(fn, start: np.ndarray, args: tuple) -> Any:
    return minimize(fn, start, args=args, method="Nelder-Mead",
                    options={"maxiter": 4000, "xatol": 1e-7, "fatol": 1e-9})


def fit_bgnbd(h: Histories) -> tuple[BgNbdParams, dict[str, Any]]:
    rows, counts = np.unique(np.stack([h.x, h.t_x, h.T]), axis=1, return_counts=True)
    started = time.perf_counter()
    res = _minimise(_bgnbd_nll, np.zeros(4), (rows[0], rows[1], rows[2], counts))
    if not res.success:
        raise FitRejected(f"BG/NBD did not converge: {res.message}")
    r, alpha, a, b = (float(v) for v in np.exp(res.x))
    _check("BG/NBD", {"r": r, "alpha": alpha, "a": a, "b": b})
    return BgNbdParams(r, alpha, a, b), {
        "converged": True, "iterations": int(res.nit), "log_likelihood": -float(res.fun),
        "duration_s": round(time.perf_counter() - started, 3), "message": str(res.message)}


def fit_gamma_gamma(h: Histories) -> tuple[GammaGammaParams, dict[str, Any]]:
    keep = (h.x > 0) & (h.monetary > 0)
    if keep.sum() < MIN_REPEAT_BUYERS:
        raise FitRejected(f"only {int(keep.sum())} repeat buyers (Gamma-Gamma needs at least "
                          f"{MIN_REPEAT_BUYERS})")
    started = time.perf_counter()
    res = _minimise(_gg_nll, np.zeros(3), (h.x[keep], h.monetary[keep]))
    if not res.success:
        raise FitRejected(f"Gamma-Gamma did not converge: {res.message}")
    p, q, gamma = (float(v) for v in np.exp(res.x))
    _check("Gamma-Gamma", {"p": p, "q": q, "gamma": gamma})
    if q <= 1:
        raise FitRejected(f"Gamma-Gamma q = {q:.4g} <= 1 gives an infinite mean value")
    return GammaGammaParams(p, q, gamma), {
        "converged": True, "iterations": int(res.nit), "log_likelihood": -float(res.fun),
        "duration_s": round(time.perf_counter() - started, 3), "message": str(res.message)}


def fit_clv(h: Histories, previous: ClvFit | None = None) -> ClvFit:
    if len(h) == 0:
        raise FitRejected("no purchases in the population as of that moment")
    bg, bg_diag = fit_bgnbd(h)
    gg, gg_diag = fit_gamma_gamma(h)
    return ClvFit(bg, gg, customers=len(h), repeat_buyers=int((h.x > 0).sum()),
                  diagnostics={"bgnbd": bg_diag, "gamma_gamma": gg_diag})
