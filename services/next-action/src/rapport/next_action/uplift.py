"""Uplift learners: what an offer changes, measured against not making it.

An acceptance rate cannot tell a loyal customer (buys anyway and takes the discount:
the business loses it) from a persuadable one (buys only with it). What arbitration
needs is the offer's incremental expected margin, E[margin | offer, x] - E[margin | no
offer, x], with its uncertainty for exploration; it subtracts the offer's cost itself.

Two estimators, one interface (``UpliftLearner``), both learning online from each
decision's closed attribution window (``Response``):

- ``TwoModelUplift`` (T-learner): one model per arm ("none" and each offer), the
  difference of their predictions is the uplift. Purchase probability by the Bayesian
  probit of :mod:`learner` with the arm as its "offer" (shared weights learn who buys at
  all, each arm's own how it differs); margin given a purchase by a Bayesian linear
  regression per arm; E[margin | arm, x] = P(buy) x E[margin | buy]. Splitting it so
  keeps the margin regression on buyers only (baskets, not zeros), lets the probit's
  non-linearity carry the purchase and learns from every arm's purchases at once.
- ``TransformedOutcomeUplift`` (Athey & Imbens 2015): with T = [made == o] and e the
  logged chance of making o, Z = Y (T - e) / (e (1 - e)) has E[Z | x] = the uplift of o,
  so a single regression of Z on x per offer (and outcome) estimates it directly. Only
  responses with 0 < e < 1 say anything about o (a decision that could not but make o,
  or could never, has no counterfactual); Z's variance is 1 / (e (1 - e)) times the
  outcome's, which with a 10% holdout is about eleven times.

Pure: no I/O, no clock; deterministic given the responses, serialised with orjson.
"""

from __future__ import annotations

import base64
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, ClassVar, Protocol

import numpy as np
import orjson
from scipy.special import ndtr

from .features import FEATURES
from .learner import ProbitModel

FORMAT = 1
SQRT_2PI = float(np.sqrt(2 * np.pi))
NONE = "none"
"""The arm of making no offer (an offer id of that name would be refused by the learner)."""


@dataclass(frozen=True)
class Response:
    """One decision's closed attribution window, as the learners see it."""
    x: np.ndarray                 # the decision's feature vector (features.FEATURES layout)
    made: str | None              # offer made (None: control, held out, or nothing worth it)
    chances: Mapping[str, float]  # offer_id -> chance this decision had of making it; {} control
    bought: bool                  # at least one attributed order in the window
    margin: float                 # attributed margin in the window, offer cost NOT included


@dataclass(frozen=True)
class UpliftEstimate:
    offer_id: str
    p_with: float          # P(buy in window | offer made, x)
    p_without: float       # P(buy in window | no offer, x)
    margin_with: float     # E[margin in window | offer made, x] (includes the buy probability)
    margin_without: float  # E[margin in window | no offer, x]
    incremental_response: float  # p_with - p_without
    incremental_margin: float    # margin_with - margin_without (cost subtracted by arbitration)
    sd: float              # posterior standard deviation of incremental_margin (> 0)
    n_with: int            # responses learnt from with this offer made
    n_without: int         # responses learnt from without it (the no-offer arm)


class UpliftLearner(Protocol):
    name: str
    version: int  # number of responses learnt

    def estimate(self, offer_ids: Sequence[str], x: np.ndarray) -> list[UpliftEstimate]: ...
    def learn(self, r: Response) -> None: ...
    def to_bytes(self) -> bytes: ...
    @classmethod
    def from_bytes(cls, raw: bytes) -> UpliftLearner: ...


def _b64(a: np.ndarray) -> str:
    return base64.b64encode(np.ascontiguousarray(a, dtype="<f8").tobytes()).decode()


def _unb64(s: str, shape: tuple[int, ...]) -> np.ndarray:
    return np.frombuffer(base64.b64decode(s), dtype="<f8").reshape(shape).copy()


def _prior_var(intercept: float, feature: float, d: int) -> np.ndarray:
    v = np.full(d, feature)
    v[0] = intercept
    return v


@dataclass
class Linear:
    """Online Bayesian linear regression: Gaussian weights with full covariance, exact
    rank-one (Kalman) updates, the noise variance estimated from the a-priori x
    a-posteriori residuals and shrunk to ``noise`` by ``noise_weight`` pseudo-points.
    Full covariance because the features are few (~50) and correlated."""

    prior_var: np.ndarray
    noise: float
    noise_weight: float = 5.0
    m: np.ndarray = field(init=False)
    v: np.ndarray = field(init=False)
    ss: float = 0.0
    n: int = 0

    def __post_init__(self) -> None:
        self.m = np.zeros(len(self.prior_var))
        self.v = np.diag(self.prior_var).astype(float)

    @property
    def noise_var(self) -> float:
        return (self.noise_weight * self.noise ** 2 + self.ss) / (self.noise_weight + self.n)

    def predict(self, x: np.ndarray) -> tuple[float, float]:
        """The mean of x.w and its posterior variance (of the mean, not of an outcome)."""
        return float(self.m @ x), float(x @ self.v @ x)

    def update(self, x: np.ndarray, y: float) -> None:
        s2 = self.noise_var
        vx = self.v @ x
        denom = s2 + float(x @ vx)
        r = y - float(self.m @ x)
        self.m += vx * (r / denom)
        self.v -= np.outer(vx, vx) / denom
        self.ss += r * r * s2 / denom
        self.n += 1

    def dump(self) -> dict[str, Any]:
        return {"m": _b64(self.m), "v": _b64(self.v), "ss": self.ss, "n": self.n}

    @classmethod
    def load(cls, data: Mapping[str, Any], prior_var: np.ndarray, noise: float,
             noise_weight: float) -> Linear:
        d = len(prior_var)
        out = cls(prior_var, noise, noise_weight)
        out.m, out.v = _unb64(data["m"], (d,)), _unb64(data["v"], (d, d))
        out.ss, out.n = float(data["ss"]), int(data["n"])
        return out


class _Serial:
    """The orjson envelope every learner shares: name, format, features, parameters."""

    name: ClassVar[str]
    PARAMS: ClassVar[tuple[str, ...]]

    def _envelope(self, body: dict[str, Any]) -> bytes:
        return orjson.dumps({"learner": self.name, "format": FORMAT,
                             "features": list(FEATURES), "version": self.version,
                             "params": {k: getattr(self, k) for k in self.PARAMS}, **body},
                            option=orjson.OPT_SORT_KEYS)

    @classmethod
    def _open(cls, raw: bytes) -> dict[str, Any]:
        data = orjson.loads(raw)
        if (data.get("learner") != cls.name or data.get("format") != FORMAT
                or tuple(data.get("features", ())) != FEATURES):
            raise ValueError(f"not a {cls.name} learner of this layout")
        return data


def _probit_dump(model: ProbitModel) -> dict[str, str]:
    return {k: base64.b64encode(v).decode() for k, v in sorted(model.to_fields().items())}


def _probit_load(data: Mapping[str, str]) -> ProbitModel:
    return ProbitModel.from_fields({k: base64.b64decode(v) for k, v in data.items()})


@dataclass
class TwoModelUplift(_Serial):
    """The T-learner: P(buy | arm, x) by the shared-plus-per-arm probit, E[margin | buy,
    arm, x] by a linear regression per arm; an arm never seen predicts from its prior
    (the probit's shared weights, the regression's zero mean and wide variance), so with
    no data p_with == p_without and the incremental margin is 0 with a large sd."""

    prior_rate: float = 0.2
    """P(buy in a window) expected of anyone before any data."""
    arm_var: float = 0.3
    """Prior variance of an arm's own probit weight per feature (how far an offer's effect
    may depart from the shared purchase model)."""
    shared_var: float = 0.1
    margin_intercept_var: float = 50.0 ** 2
    margin_feature_var: float = 20.0 ** 2
    margin_noise: float = 30.0
    """Prior guess of a purchase's margin's spread (money), before residuals are seen."""
    version: int = 0
    name: ClassVar[str] = "two_model"
    PARAMS: ClassVar[tuple[str, ...]] = ("prior_rate", "arm_var", "shared_var",
                                         "margin_intercept_var", "margin_feature_var",
                                         "margin_noise")
    buy: ProbitModel = field(init=False)
    margin: dict[str, Linear] = field(init=False, default_factory=dict)
    counts: dict[str, int] = field(init=False, default_factory=dict)

    def __post_init__(self) -> None:
        self.buy = ProbitModel(prior_rate=self.prior_rate, offer_var=self.arm_var,
                               shared_var=self.shared_var)
        self._prior = self._linear()

    def _linear(self) -> Linear:
        return Linear(_prior_var(self.margin_intercept_var, self.margin_feature_var,
                                 len(FEATURES)), self.margin_noise)

    def estimate(self, offer_ids: Sequence[str], x: np.ndarray) -> list[UpliftEstimate]:
        """The probit's predictive P(buy) per arm; the uncertainty of the difference by the
        delta method, where the shared weights' part, common to both arms, mostly cancels
        (treating the arms as independent would keep sd large long after the offer's own
        effect is known)."""
        arms = [NONE, *offer_ids]
        known = self.buy._ids
        # An arm never seen is the no-offer arm's mean at the prior's variance: no data
        # says the offer changes nothing (not that its buyers buy at the prior rate).
        mean, var = self.buy._score([a if a in known else NONE for a in arms], x)
        unseen = np.array([a not in known and NONE in known for a in arms])
        if unseen.any():
            x2 = x * x
            extra = float(self.buy._v[0] @ x2) - float(self.buy._v[known[NONE]] @ x2)
            var = var + unseen * extra
        shared = float(self.buy._sv @ (x * x))
        s = np.sqrt(self.buy.beta ** 2 + var)
        p, dp = ndtr(mean / s), np.exp(-0.5 * (mean / s) ** 2) / (SQRT_2PI * s)
        vp = dp * dp * var
        g = [self._margin_of(a).predict(x) for a in arms]
        p0, (g0, vg0) = float(p[0]), g[0]
        n0 = self.counts.get(NONE, 0)
        out = []
        for i, o in enumerate(offer_ids, start=1):
            pw, (gw, vgw) = float(p[i]), g[i]
            cov = float(dp[i] * dp[0]) * shared
            v = (gw * gw * vp[i] + g0 * g0 * vp[0] - 2 * gw * g0 * cov
                 + (pw * pw + vp[i]) * vgw + (p0 * p0 + vp[0]) * vg0)
            out.append(UpliftEstimate(o, pw, p0, pw * gw, p0 * g0, pw - p0, pw * gw - p0 * g0,
                                      max(float(np.sqrt(max(v, 0.0))), 1e-9),
                                      self.counts.get(o, 0), n0))
        return out

    def _margin_of(self, arm: str) -> Linear:
        """An arm's margin model; one never fitted starts from the no-offer arm's mean
        at the prior's variance (no data: the offer changes nothing)."""
        found = self.margin.get(arm)
        if found is not None:
            return found
        fresh = self._linear()
        if arm != NONE and NONE in self.margin:
            fresh.m = self.margin[NONE].m.copy()
        return fresh

    def _seed(self, arm: str) -> None:
        """A new offer's purchase weights start at the no-offer arm's."""
        b = self.buy
        if arm != NONE and arm not in b._ids and NONE in b._ids:
            b._ids[arm] = len(b._m)
            b._m = np.vstack([b._m, b._m[b._ids[NONE]]])
            b._v = np.vstack([b._v, b._v[:1]])

    def learn(self, r: Response) -> None:
        arm = NONE if r.made is None else r.made
        self._seed(arm)
        self.buy.update(arm, r.x, r.bought)
        if r.bought:
            self.margin[arm] = self._margin_of(arm)
            self.margin[arm].update(r.x, r.margin)
        self.counts[arm] = self.counts.get(arm, 0) + 1
        self.version += 1

    def to_bytes(self) -> bytes:
        return self._envelope({"buy": _probit_dump(self.buy), "counts": self.counts,
                               "margin": {a: m.dump() for a, m in self.margin.items()}})

    @classmethod
    def from_bytes(cls, raw: bytes) -> TwoModelUplift:
        data = cls._open(raw)
        out = cls(**data["params"], version=int(data["version"]))
        out.buy = _probit_load(data["buy"])
        out.counts = {k: int(v) for k, v in data["counts"].items()}
        pv = out._prior.prior_var
        out.margin = {a: Linear.load(m, pv, out.margin_noise, out._prior.noise_weight)
                      for a, m in data["margin"].items()}
        return out


@dataclass
class TransformedOutcomeUplift(_Serial):
    """Per offer, the transformed outcomes of purchase and of margin regressed on x (prior
    mean 0: no uplift until the data say so); the no-offer baseline (p_without,
    margin_without) from every response without an offer, by the probit and a linear
    regression of the margin, so that the estimate's other fields are filled."""

    prior_rate: float = 0.2
    uplift_intercept_var: float = 0.3 ** 2
    uplift_feature_var: float = 0.2 ** 2
    """Prior variance per weight of the purchase-uplift regression (probability units)."""
    margin_scale: float = 20.0
    """Money per unit of probability: the margin regressions' priors are this many times
    wider (a purchase's typical margin)."""
    noise_weight: float = 5.0
    version: int = 0
    name: ClassVar[str] = "transformed_outcome"
    PARAMS: ClassVar[tuple[str, ...]] = ("prior_rate", "uplift_intercept_var",
                                         "uplift_feature_var", "margin_scale", "noise_weight")
    base_buy: ProbitModel = field(init=False)
    base_margin: Linear = field(init=False)
    response: dict[str, Linear] = field(init=False, default_factory=dict)
    profit: dict[str, Linear] = field(init=False, default_factory=dict)
    counts: dict[str, list[int]] = field(init=False, default_factory=dict)

    def __post_init__(self) -> None:
        self.base_buy = ProbitModel(prior_rate=self.prior_rate)
        self.base_margin = self._linear(True, 1.0)
        self._priors = (self._linear(False, 1.0), self._linear(True, 1.0))

    def _linear(self, money: bool, noise: float) -> Linear:
        k = self.margin_scale if money else 1.0
        pv = _prior_var(self.uplift_intercept_var * k * k, self.uplift_feature_var * k * k,
                        len(FEATURES))
        return Linear(pv, noise * k, self.noise_weight)

    def estimate(self, offer_ids: Sequence[str], x: np.ndarray) -> list[UpliftEstimate]:
        p0 = float(self.base_buy.predict([NONE], x)[0][0])
        m0 = self.base_margin.predict(x)[0]
        out = []
        for o in offer_ids:
            du = self.response.get(o, self._priors[0]).predict(x)[0]
            dm, vm = self.profit.get(o, self._priors[1]).predict(x)
            pw = min(1.0, max(0.0, p0 + du))
            n = self.counts.get(o, [0, 0])
            out.append(UpliftEstimate(o, pw, p0, m0 + dm, m0, pw - p0, dm,
                                      max(float(np.sqrt(vm)), 1e-9), n[0], n[1]))
        return out

    def learn(self, r: Response) -> None:
        if r.made is None:
            self.base_buy.update(NONE, r.x, r.bought)
            self.base_margin.update(r.x, r.margin)
        for o, e in sorted(r.chances.items()):
            if not 0.0 < e < 1.0:
                continue  # made for sure or never: no counterfactual in this response
            t = float(r.made == o)
            w = (t - e) / (e * (1.0 - e))
            if o not in self.response:
                self.response[o], self.profit[o] = self._linear(False, 1.0), \
                    self._linear(True, 1.0)
            self.response[o].update(r.x, float(r.bought) * w)
            self.profit[o].update(r.x, r.margin * w)
            self.counts.setdefault(o, [0, 0])[0 if t else 1] += 1
        self.version += 1

    def to_bytes(self) -> bytes:
        return self._envelope({
            "base_buy": _probit_dump(self.base_buy), "base_margin": self.base_margin.dump(),
            "counts": self.counts,
            "response": {o: m.dump() for o, m in self.response.items()},
            "profit": {o: m.dump() for o, m in self.profit.items()}})

    @classmethod
    def from_bytes(cls, raw: bytes) -> TransformedOutcomeUplift:
        data = cls._open(raw)
        out = cls(**data["params"], version=int(data["version"]))
        out.base_buy = _probit_load(data["base_buy"])
        resp, money = out._priors
        out.base_margin = Linear.load(data["base_margin"], money.prior_var, money.noise,
                                      out.noise_weight)
        out.response = {o: Linear.load(m, resp.prior_var, resp.noise, out.noise_weight)
                        for o, m in data["response"].items()}
        out.profit = {o: Linear.load(m, money.prior_var, money.noise, out.noise_weight)
                      for o, m in data["profit"].items()}
        out.counts = {o: [int(a), int(b)] for o, (a, b) in data["counts"].items()}
        return out


LEARNERS: dict[str, type] = {"two_model": TwoModelUplift,
                             "transformed_outcome": TransformedOutcomeUplift}


def load(name: str, raw: bytes | None) -> UpliftLearner:
    """The stored learner, or a fresh one when nothing is stored or it is unreadable (another
    learner, layout or feature list): an uplift model that cannot be read starts over."""
    cls = LEARNERS[name]
    if raw:
        try:
            return cls.from_bytes(raw)
        except (ValueError, KeyError, TypeError, orjson.JSONDecodeError):
            pass
    return cls()
