"""The two-model (T-) uplift learner: a no-offer model, and per offer a deviation from it,
each a Bayesian logistic regression (MAP with a Gaussian prior, Laplace posterior)
refitted in batch on the latest responses.

P(buy | no offer, x) is fitted on every response without an offer (control group,
holdouts, nothing made); P(buy | offer o, x) on o's responses with the no-offer model's
log-odds as an offset, so o's own weights (prior mean 0) say only how o changes buying
for this kind of customer, even where the arms have seen different customers, and an
offer nobody has seen predicts exactly the no-offer purchase. The margin of a purchase
likewise: a Bayesian linear regression for the no-offer arm and, per offer, one of the
difference from it. Refitting in batch (every ``refit_every`` responses, on the last
``keep`` of them) keeps every offer's deviation measured against the current no-offer
model, which an online update could not.
"""

from __future__ import annotations

import base64
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import ClassVar

import numpy as np
from scipy.optimize import minimize
from scipy.special import expit, log_expit

from .features import FEATURES
from .uplift import NONE, Response, UpliftEstimate, _b64, _prior_var, _Serial, _unb64

D = len(FEATURES)


@dataclass
class Fit:
    """Posterior mean and covariance of one regression's weights."""

    m: np.ndarray
    c: np.ndarray

    def mean_var(self, x: np.ndarray) -> tuple[float, float]:
        return float(self.m @ x), float(x @ self.c @ x)

    def dump(self) -> list[str]:
        return [_b64(self.m), _b64(self.c)]

    @classmethod
    def load(cls, raw: Sequence[str]) -> Fit:
        return cls(_unb64(raw[0], (D,)), _unb64(raw[1], (D, D)))


def logistic(x: np.ndarray, y: np.ndarray, offset: np.ndarray, prior: np.ndarray,
             start: np.ndarray) -> Fit:
    """MAP logistic regression with independent Gaussian priors (mean 0, var ``prior``),
    and the Laplace approximation of its posterior."""
    s = 2 * y - 1

    def loss(w: np.ndarray) -> tuple[float, np.ndarray]:
        z = offset + x @ w
        nll = -float(np.sum(log_expit(s * z)))
        grad = x.T @ (expit(z) - y)
        return nll + 0.5 * float(np.sum(w * w / prior)), grad + w / prior

    w = minimize(loss, start, jac=True, method="L-BFGS-B",
                 options={"maxiter": 200}).x if len(y) else np.zeros(D)
    p = expit(offset + x @ w)
    h = (x * (p * (1 - p))[:, None]).T @ x + np.diag(1 / prior)
    return Fit(w, np.linalg.inv(h))


def linear(x: np.ndarray, y: np.ndarray, prior: np.ndarray, noise: float) -> Fit:
    """Bayesian linear regression (conjugate, noise variance from the residuals shrunk to
    ``noise``): posterior mean and covariance of the weights."""
    if not len(y):
        return Fit(np.zeros(D), np.diag(prior))
    s2 = noise * noise
    for _ in range(2):
        c = np.linalg.inv(x.T @ x / s2 + np.diag(1 / prior))
        m = c @ (x.T @ y) / s2
        r = y - x @ m
        s2 = (5 * noise * noise + float(r @ r)) / (5 + len(y))
    return Fit(m, c)


def _prob(z: float, v: float) -> tuple[float, float]:
    """Predictive P(buy) under the posterior (MacKay's probit approximation) and its slope."""
    p = float(expit(z / np.sqrt(1 + np.pi * v / 8)))
    return p, p * (1 - p)


@dataclass
class TwoModelUplift(_Serial):
    prior_rate: float = 0.2
    """P(buy in a window) expected of anyone before any data."""
    base_var: tuple[float, float] = (4.0, 1.0)
    """Prior variance of the no-offer model's weights: intercept, each feature."""
    arm_var: tuple[float, float] = (1.0, 0.25)
    """Prior variance of an offer's own weights (how far its effect may go)."""
    margin_var: tuple[float, float] = (50.0 ** 2, 20.0 ** 2)
    delta_var: tuple[float, float] = (20.0 ** 2, 10.0 ** 2)
    margin_noise: float = 30.0
    """Prior guess of a purchase's margin's spread (money), before residuals are seen."""
    keep: int = 10_000
    """How many of the latest responses are kept and refitted on."""
    refit_every: int = 100
    version: int = 0
    name: ClassVar[str] = "two_model"
    PARAMS: ClassVar[tuple[str, ...]] = ("prior_rate", "base_var", "arm_var", "margin_var",
                                         "delta_var", "margin_noise", "keep", "refit_every")
    rows: list[tuple[np.ndarray, str, bool, float]] = field(init=False, default_factory=list)
    fits: dict[str, Fit] = field(init=False, default_factory=dict)
    """'buy:none', 'buy:<offer>', 'margin:none', 'margin:<offer>'."""
    counts: dict[str, int] = field(init=False, default_factory=dict)
    pending: int = 0

    def _prior(self, which: tuple[float, float]) -> np.ndarray:
        return _prior_var(which[0], which[1], D)

    def _fit(self, key: str) -> Fit:
        found = self.fits.get(key)
        if found is not None:
            return found
        if key == "buy:none":
            m = np.zeros(D)
            # the predictive P(buy) is prior_rate for a customer described by the
            # intercept and one channel (the posterior's width pulls it toward 0.5)
            v = self.base_var[0] + self.base_var[1]
            m[0] = float(np.log(self.prior_rate / (1 - self.prior_rate))
                         * np.sqrt(1 + np.pi * v / 8))
            return Fit(m, np.diag(self._prior(self.base_var)))
        prior = {"buy": self.arm_var, "margin": self.margin_var if key == "margin:none"
                 else self.delta_var}[key.split(":", 1)[0]]
        return Fit(np.zeros(D), np.diag(self._prior(prior)))

    def estimate(self, offer_ids: Sequence[str], x: np.ndarray) -> list[UpliftEstimate]:
        """Incremental margin (p_with - p_without) x g0 + p_with x delta, with g0 the
        no-offer margin of a purchase and delta the offer's change to it; its variance
        by the delta method."""
        z0, v0 = self._fit("buy:none").mean_var(x)
        p0, _ = _prob(z0, v0)
        g0, vg0 = self._fit("margin:none").mean_var(x)
        n0 = self.counts.get(NONE, 0)
        out = []
        for o in offer_ids:
            dz, vz = self._fit(f"buy:{o}").mean_var(x)
            # an offer never fitted buys as the no-offer arm; its own prior width counts
            # in the uncertainty only
            pw, slope = _prob(z0 + dz, v0 + vz) if f"buy:{o}" in self.fits else (p0, p0 * (1 - p0))
            d, vd = self._fit(f"margin:{o}").mean_var(x)
            inc = (pw - p0) * g0 + pw * d
            var = slope * slope * vz * g0 * g0 + pw * pw * vd + (pw - p0) ** 2 * vg0
            out.append(UpliftEstimate(o, pw, p0, pw * (g0 + d), p0 * g0, pw - p0, inc,
                                      max(float(np.sqrt(max(var, 0.0))), 1e-9),
                                      self.counts.get(o, 0), n0))
        return out

    def learn(self, r: Response) -> None:
        arm = NONE if r.made is None else r.made
        self.rows.append((np.asarray(r.x, dtype=float), arm, bool(r.bought), float(r.margin)))
        if len(self.rows) > self.keep:
            del self.rows[: len(self.rows) - self.keep]
        self.counts[arm] = self.counts.get(arm, 0) + 1
        self.version += 1
        self.pending += 1
        if self.pending >= self.refit_every or self.counts[arm] <= 20:
            self.refit()

    def refit(self) -> None:
        """Every model again on the rows kept: the no-offer arm first, then each offer
        against it."""
        self.pending = 0
        if not self.rows:
            return
        x = np.stack([r[0] for r in self.rows])
        arms = np.array([r[1] for r in self.rows])
        y = np.array([r[2] for r in self.rows], dtype=float)
        money = np.array([r[3] for r in self.rows])
        base = arms == NONE
        start = self._fit("buy:none").m
        b = self.fits["buy:none"] = logistic(x[base], y[base], np.zeros(int(base.sum())),
                                             self._prior(self.base_var), start)
        bought = base & (y > 0)
        g = self.fits["margin:none"] = linear(x[bought], money[bought],
                                              self._prior(self.margin_var), self.margin_noise)
        for o in sorted(set(arms.tolist()) - {NONE}):
            mine = arms == o
            self.fits[f"buy:{o}"] = logistic(x[mine], y[mine], x[mine] @ b.m,
                                             self._prior(self.arm_var),
                                             self._fit(f"buy:{o}").m)
            sold = mine & (y > 0)
            self.fits[f"margin:{o}"] = linear(x[sold], money[sold] - x[sold] @ g.m,
                                              self._prior(self.delta_var), self.margin_noise)

    def to_bytes(self) -> bytes:
        x = np.stack([r[0] for r in self.rows]) if self.rows else np.zeros((0, D))
        return self._envelope({
            "fits": {k: f.dump() for k, f in self.fits.items()}, "counts": self.counts,
            "pending": self.pending,
            "rows": {"x": base64.b64encode(x.astype("<f2").tobytes()).decode(),
                     "arm": [r[1] for r in self.rows], "y": [int(r[2]) for r in self.rows],
                     "margin": [round(r[3], 2) for r in self.rows]}})

    @classmethod
    def from_bytes(cls, raw: bytes) -> TwoModelUplift:
        data = cls._open(raw)
        params = {k: tuple(v) if isinstance(v, list) else v for k, v in data["params"].items()}
        out = cls(**params, version=int(data["version"]))
        out.fits = {k: Fit.load(v) for k, v in data["fits"].items()}
        out.counts = {k: int(v) for k, v in data["counts"].items()}
        out.pending = int(data["pending"])
        rows = data["rows"]
        x = np.frombuffer(base64.b64decode(rows["x"]), dtype="<f2").astype(float).reshape(-1, D)
        out.rows = [(x[i], a, bool(y), float(m)) for i, (a, y, m) in
                    enumerate(zip(rows["arm"], rows["y"], rows["margin"], strict=True))]
        return out
