"""How well an uplift model ranks: the Qini curve and coefficient (Radcliffe 2007).

Uplift is never observed for one customer, only for groups: target the top k by score
and compare the treated's outcomes with the controls' scaled to as many customers. The
curve's area above the random line (targeting in arbitrary order) is the coefficient.
Where a simulation knows each customer's true uplift, ``qini_against_truth`` measures
the ranking directly, scaled by the oracle's: 1 ranks like the truth, 0 like chance.

Ties in the scores are ordered arbitrarily by any model, so within a tie the curves are
drawn as straight lines between the tie's ends (the expectation over orderings): a
constant score is exactly the random line, whatever the input order.
"""

from __future__ import annotations

import numpy as np


def _order(scores: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """The best-first order and the prefix sizes where the score changes (0 and n too)."""
    order = np.argsort(-scores, kind="stable")
    s = scores[order]
    ends = np.flatnonzero(s[1:] != s[:-1]) + 1
    return order, np.concatenate([[0], ends, [len(s)]])


def _cumulative(values: np.ndarray, bounds: np.ndarray) -> np.ndarray:
    """Sums over each top-k prefix, k = 0..n, linear within ties."""
    cs = np.concatenate([[0.0], np.cumsum(values, dtype=float)])
    return np.interp(np.arange(len(cs)), bounds, cs[bounds])


def qini_curve(scores, treated, outcome) -> tuple[np.ndarray, np.ndarray]:
    """Fractions targeted k/n (k = 0..n) and the Qini gains at each: the treated's total
    outcome among the top k minus the controls' scaled by n_treated(k) / n_control(k)
    (0 while the top k has no control)."""
    scores, t = np.asarray(scores, float), np.asarray(treated, bool)
    y = np.asarray(outcome, float)
    order, bounds = _order(scores)
    t, y = t[order], y[order]
    nt, nc = _cumulative(t, bounds), _cumulative(~t, bounds)
    yt, yc = _cumulative(y * t, bounds), _cumulative(y * ~t, bounds)
    with np.errstate(divide="ignore", invalid="ignore"):
        gains = np.where(nc > 0, yt - yc * nt / np.where(nc > 0, nc, 1.0), yt)
    return np.arange(len(gains)) / max(len(scores), 1), gains


def _area_over_random(fractions: np.ndarray, gains: np.ndarray) -> float:
    line = fractions * gains[-1]
    d = gains - line
    return float(np.sum((d[1:] + d[:-1]) * np.diff(fractions)) / 2)


def qini_coefficient(scores, treated, outcome) -> float:
    """The area between the Qini curve and the random line from (0, 0) to (1, Q(n)), in
    the outcome's units (trapezoids over the fraction targeted)."""
    return _area_over_random(*qini_curve(scores, treated, outcome))


def qini_against_truth(scores, true_uplift) -> float:
    """Area of the model's cumulative-true-uplift curve above the random line, divided by
    the oracle's (ranking by the truth itself): 1 = like the truth, 0 = random, negative
    = backwards; nan when the truth is the same for everyone (nothing to rank)."""
    u = np.asarray(true_uplift, float)
    fractions = np.arange(len(u) + 1) / max(len(u), 1)

    def area(s: np.ndarray) -> float:
        order, bounds = _order(s)
        return _area_over_random(fractions, _cumulative(u[order], bounds))

    best = area(u)
    return area(np.asarray(scores, float)) / best if best > 0 else float("nan")
