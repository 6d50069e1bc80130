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


from .uplift_transformed import TransformedOutcomeUplift  # noqa: E402 (builds on the above)
from .uplift_two_model import TwoModelUplift  # noqa: E402 (builds on the above)

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
