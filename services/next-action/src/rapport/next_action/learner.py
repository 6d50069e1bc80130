"""Response propensities learnt online: Bayesian probit regression with diagonal
Gaussian weights and assumed-density-filtering updates (Graepel et al. 2010,
"Web-Scale Bayesian Click-Through Rate Prediction", the AdPredictor model).

P(accept | x) = Phi(w.x / beta) with w ~ N(mu, diag(sigma^2)) gives the predictive
Phi(mu.x / sqrt(beta^2 + sum x_i^2 sigma_i^2)). The score of an offer sums two weight
sets: the offer's own and one shared by every offer, so a new offer starts from what
all offers have taught (which customers respond at all, on which channel) and its own
weights learn only how it differs. Each outcome is one closed-form update: no batch
refit, no learning rate, and the posterior's variance is the uncertainty that
optimistic ranking and Thompson sampling explore with.

Pure: no I/O, no clock; randomness comes in as a numpy Generator.
"""

from __future__ import annotations

import json
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

import numpy as np
from scipy.special import log_ndtr, ndtr, ndtri, owens_t

from .features import FEATURES

FORMAT = 1
"""The stored layout's version: a model stored in another layout is ignored."""
META, SHARED, OFFER_PREFIX = "meta", "shared", "offer:"


def _key(k: bytes | str) -> str:
    return k.decode() if isinstance(k, bytes) else k


@dataclass
class ProbitModel:
    beta: float = 1.0
    """Noise scale of the probit: larger means slower, steadier updates."""
    prior_rate: float = 0.05
    """The acceptance an offer nobody has seen is expected to have."""
    intercept_var: float = 0.5
    """Prior variance of each intercept weight (the offer's and the shared one)."""
    offer_var: float = 0.05
    """Prior variance of an offer's own weight per non-intercept feature."""
    shared_var: float = 0.1
    """Prior variance of a shared weight per non-intercept feature."""
    features: tuple[str, ...] = FEATURES
    version: int = 0
    """How many outcomes the model has learnt from (a stored model's freshness)."""
    _ids: dict[str, int] = field(default_factory=dict, repr=False)
    _m: np.ndarray = field(init=False, repr=False)  # rows: offers; row 0 the prior
    _v: np.ndarray = field(init=False, repr=False)
    _sm: np.ndarray = field(init=False, repr=False)  # the shared weights
    _sv: np.ndarray = field(init=False, repr=False)

    def __post_init__(self) -> None:
        d = len(self.features)
        self._sm = np.zeros(d)
        self._sv = np.full(d, self.shared_var)
        self._sv[0] = self.intercept_var
        pv = np.full(d, self.offer_var)
        pv[0] = self.intercept_var
        pm = np.zeros(d)
        # The intercept's mean gives prior_rate to a customer described by the intercept
        # and one channel only (both weight sets, both features, at their prior).
        spread = self.beta ** 2 + 2 * self.intercept_var + self.offer_var + self.shared_var
        pm[0] = float(ndtri(self.prior_rate)) * math.sqrt(spread)
        self._m, self._v = pm[None, :].copy(), pv[None, :].copy()
        self._ids = {}

    @property
    def offers(self) -> list[str]:
        return list(self._ids)

    def _rows(self, offer_ids: Sequence[str]) -> np.ndarray:
        ids = self._ids
        return np.fromiter((ids.get(o, 0) for o in offer_ids), dtype=np.intp,
                           count=len(offer_ids))

    def _score(self, offer_ids: Sequence[str], x: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Mean and variance of w.x per offer (offer's weights plus the shared ones)."""
        rows, x2 = self._rows(offer_ids), x * x
        mean = (self._m @ x)[rows] + self._sm @ x
        var = (self._v @ x2)[rows] + self._sv @ x2
        return mean, var

    def predict(self, offer_ids: Sequence[str], x: np.ndarray,
                ) -> tuple[np.ndarray, np.ndarray]:
        """Per offer, the posterior predictive acceptance probability and the standard
        deviation of the acceptance probability under the posterior (exact for the
        probit: E[Phi(z)^2] is a bivariate normal orthant, via Owen's T)."""
        mean, var = self._score(offer_ids, x)
        s2 = self.beta ** 2 + var
        h = mean / np.sqrt(s2)
        p = ndtr(h)
        rho = var / s2
        second = p - 2 * owens_t(h, np.sqrt((1 - rho) / (1 + rho)))
        return p, np.sqrt(np.maximum(second - p * p, 0.0))

    def upper(self, offer_ids: Sequence[str], x: np.ndarray, kappa: float) -> np.ndarray:
        """Optimistic propensity, mean + kappa x sd within [0, 1]: ranking by it tries
        the offers it knows little about for this kind of customer."""
        p, sd = self.predict(offer_ids, x)
        return np.clip(p + kappa * sd, 0.0, 1.0)

    def sample(self, offer_ids: Sequence[str], x: np.ndarray,
               rng: np.random.Generator) -> np.ndarray:
        """Thompson sampling: one acceptance probability per offer, from weights drawn
        from the posterior (drawn as w.x directly, which for one x is the same law)."""
        mean, var = self._score(offer_ids, x)
        z = mean + np.sqrt(var) * rng.standard_normal(len(mean))
        return ndtr(z / self.beta)

    def update(self, offer_id: str, x: np.ndarray, accepted: bool) -> None:
        """One ADF step: the Gaussian closest to prior x probit likelihood."""
        row = self._ids.get(offer_id)
        if row is None:
            row = self._ids[offer_id] = len(self._m)
            self._m = np.vstack([self._m, self._m[:1]])
            self._v = np.vstack([self._v, self._v[:1]])
        m, v = self._m[row], self._v[row]
        x2 = x * x
        s2 = self.beta ** 2 + float(v @ x2 + self._sv @ x2)
        s = math.sqrt(s2)
        y = 1.0 if accepted else -1.0
        t = y * float(m @ x + self._sm @ x) / s
        g = math.exp(-0.5 * t * t - 0.5 * math.log(2 * math.pi) - float(log_ndtr(t)))
        w = g * (g + t)
        for mu, var in ((m, v), (self._sm, self._sv)):
            mu += (y * g / s) * var * x
            var *= np.maximum(1.0 - (w / s2) * var * x2, 1e-12)
        self.version += 1

    def _meta(self) -> dict[str, object]:
        return {"format": FORMAT, "features": list(self.features), "beta": self.beta,
                "prior_rate": self.prior_rate, "intercept_var": self.intercept_var,
                "offer_var": self.offer_var, "shared_var": self.shared_var,
                "version": self.version}

    def to_fields(self) -> dict[str, bytes]:
        """A hash's fields: ``meta`` (JSON), ``shared`` and ``offer:<id>`` (the means then
        the variances, float64)."""
        out = {META: json.dumps(self._meta()).encode(),
               SHARED: np.concatenate([self._sm, self._sv]).astype("<f8").tobytes()}
        for offer_id, row in self._ids.items():
            out[OFFER_PREFIX + offer_id] = np.concatenate(
                [self._m[row], self._v[row]]).astype("<f8").tobytes()
        return out

    @classmethod
    def from_fields(cls, fields: Mapping[bytes | str, bytes], **defaults: float,
                    ) -> ProbitModel:
        """The stored model, or a fresh one (built with ``defaults``) when nothing is
        stored or what is stored has another layout or other features."""
        data = {_key(k): v for k, v in fields.items()}
        try:
            meta = json.loads(data[META])
        except (KeyError, ValueError):
            return cls(**defaults)  # type: ignore[arg-type]
        if meta.get("format") != FORMAT or tuple(meta.get("features", ())) != FEATURES:
            return cls(**defaults)  # type: ignore[arg-type]
        model = cls(**{k: float(meta[k]) for k in ("beta", "prior_rate", "intercept_var",
                                                   "offer_var", "shared_var")})
        d = len(FEATURES)

        def vectors(raw: bytes) -> tuple[np.ndarray, np.ndarray] | None:
            a = np.frombuffer(raw, dtype="<f8")
            return (a[:d].copy(), a[d:].copy()) if a.size == 2 * d else None

        shared = vectors(data.get(SHARED, b""))
        if shared is None:
            return cls(**defaults)  # type: ignore[arg-type]
        model._sm, model._sv = shared
        rows_m, rows_v = [model._m[0]], [model._v[0]]
        for key, raw in sorted(data.items()):
            got = vectors(raw) if key.startswith(OFFER_PREFIX) else None
            if got is not None:
                model._ids[key[len(OFFER_PREFIX):]] = len(rows_m)
                rows_m.append(got[0])
                rows_v.append(got[1])
        model._m, model._v = np.vstack(rows_m), np.vstack(rows_v)
        model.version = int(meta.get("version", 0))
        return model


@dataclass
class BetaModel:
    """The non-contextual baseline: per key (an offer, or an offer on a channel) a Beta
    posterior on the acceptance rate, from a prior of ``prior_weight`` pseudo-decisions
    at ``prior_rate`` (the service's propensity today)."""

    prior_rate: float = 0.05
    prior_weight: float = 20.0
    counts: dict[str, list[float]] = field(default_factory=dict)

    def _ab(self, keys: Sequence[str]) -> tuple[np.ndarray, np.ndarray]:
        a0, b0 = self.prior_rate * self.prior_weight, (1 - self.prior_rate) * self.prior_weight
        got = [self.counts.get(k, (0.0, 0.0)) for k in keys]
        return (np.array([a0 + g[0] for g in got]), np.array([b0 + g[1] for g in got]))

    def mean(self, keys: Sequence[str]) -> np.ndarray:
        a, b = self._ab(keys)
        return a / (a + b)

    def sample(self, keys: Sequence[str], rng: np.random.Generator) -> np.ndarray:
        a, b = self._ab(keys)
        return rng.beta(a, b)

    def update(self, key: str, accepted: bool) -> None:
        c = self.counts.setdefault(key, [0.0, 0.0])
        c[0 if accepted else 1] += 1.0
