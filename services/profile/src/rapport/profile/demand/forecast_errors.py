"""What a forecaster knows of its own errors at one horizon: the median bias of its model,
the quantiles that make its intervals, the running size of its and the seasonal-naive
forecast's errors (which weight the two in the blend), and its score so far.

Quantiles are tracked by stochastic approximation (each outcome nudges a quantile up by
its share ``tau`` or down by ``1 - tau``), in units of the series' usual residual, with a
rate that starts large and settles: constant memory, and it keeps adapting.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

_Z80 = 1.2815515655446004 * 1.25   # the normal's 10/90 % point, in mean |residual|s


@dataclass(frozen=True)
class Quality:
    """How the forecasts made ``horizon`` ahead did, against the seasonal-naive one."""

    horizon: str
    points: int
    mae: float
    naive_mae: float
    covered: float                   # share of outcomes inside the interval

    @property
    def mase(self) -> float | None:
        return self.mae / self.naive_mae if self.naive_mae > 0 else None


@dataclass
class HorizonErrors:
    lower: float = -_Z80
    middle: float = 0.0
    upper: float = _Z80
    model_error: float = 0.0         # running mean |model error| (for the blend)
    checked: int = 0
    abs_error: float = 0.0           # the score: sums over outcomes with a naive forecast
    naive_error: float = 0.0
    inside: int = 0
    scored: int = 0

    def blend(self, model: float, naive: float | None, naive_mae: float) -> float:
        """Model and seasonal-naive forecasts weighted by the inverse of their recent
        squared errors: an exactly repeating series is best forecast by its last day, a
        noisy one by its smoothed patterns."""
        if naive is None or self.model_error + naive_mae <= 0:
            return model
        m, n = self.model_error, naive_mae
        both = m * m + n * n
        if both <= 0.0:            # errors so small their squares underflow: equally good
            return 0.5 * (model + naive)
        w = n * n / both
        return w * model + (1.0 - w) * naive

    def learn(self, value: float, model: float, expected: float, naive: float | None,
              scale: float, *, coverage: float, rate: float, blend_alpha: float) -> None:
        """One forecast met its outcome ``value``."""
        tail = (1.0 - coverage) / 2.0
        self.model_error += blend_alpha * (abs(value - model) - self.model_error)
        z = (value - expected) / scale
        if naive is not None:
            self.abs_error += abs(value - expected)
            self.naive_error += abs(value - naive)
            self.inside += int(self.lower <= z <= self.upper)
            self.scored += 1
        step = 2.0 * max(rate, 2.0 / (self.checked + 10))
        self.lower += step * (tail - (z < self.lower))
        self.upper += step * ((1 - tail) - (z < self.upper))
        self.middle += step * (0.5 - ((value - model) / scale < self.middle))
        self.checked += 1

    def quality(self, horizon: str) -> Quality:
        n = self.scored
        return Quality(horizon, n, self.abs_error / n if n else 0.0,
                       self.naive_error / n if n else 0.0, self.inside / n if n else 0.0)

    def to_json(self) -> dict[str, float]:
        return asdict(self)
