"""The transformed-outcome uplift learner (Athey & Imbens 2015), beside the two-model one
in :mod:`.uplift` (same interface, compared there and in the README)."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import ClassVar

import numpy as np

from .features import FEATURES
from .learner import ProbitModel
from .uplift import (
    NONE,
    Linear,
    Response,
    UpliftEstimate,
    _prior_var,
    _probit_dump,
    _probit_load,
    _Serial,
)


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
