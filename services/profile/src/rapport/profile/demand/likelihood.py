"""Surprise to score: Numenta's anomaly likelihood of a short average of surprises against
their long running distribution, learnt per series, so that one threshold suits a calm
series and a noisy one; then only a peak counts (lower scores soon after it are 0), so
that a spike or a shift scores once."""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from .detector import DetectorConfig


def _phi(z: float) -> float:
    return 0.5 * math.erfc(-z / math.sqrt(2.0))


def likelihood_score(short: float, mean: float, var: float) -> float:
    """Numenta's log-scaled anomaly likelihood of a short average of surprises."""
    likelihood = _phi((short - mean) / (math.sqrt(var) + 1e-6))
    return max(0.0, min(1.0, math.log(1.0000000001 - likelihood) / math.log(1e-10)))


@dataclass
class Likelihood:
    short: float = 0.0
    long_mean: float = 0.0
    long_var: float = 1.0
    peak: float = 0.0
    since_peak: int = 0
    count: int = 10**9      # surprises in the long distribution (older states: many)

    def update(self, surprise: float, warm: bool, c: DetectorConfig) -> float:
        """The point's score (0 before warm-up and below a recent peak)."""
        score = 0.0
        if warm:
            self.short += c.short_alpha * (surprise - self.short)
            score = likelihood_score(self.short, self.long_mean, self.long_var)
        else:
            self.short = surprise
        # The plain mean and variance of the surprises until there are 1/long_alpha of
        # them, an exponential window after: a prior variance would blind the first
        # hundreds of points, where a short series has its first anomaly.
        self.count += 1
        alpha = max(c.long_alpha, 1.0 / self.count)
        delta = surprise - self.long_mean
        self.long_mean += alpha * delta
        self.long_var = (1.0 - alpha) * (self.long_var + alpha * delta * delta)
        self.since_peak += 1
        if self.since_peak > c.suppress_points:
            self.peak = 0.0
        if score > self.peak:
            self.peak, self.since_peak = score, 0
            return score
        return 0.0

    def to_state(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_state(cls, state: dict[str, Any]) -> Likelihood:
        return cls(**state)
