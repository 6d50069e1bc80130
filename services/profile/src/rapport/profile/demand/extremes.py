"""New territory: a point past the lowest or highest value the series ever took, by more
than a share of the distance between them. Numenta's NAB detector calls it a spatial
anomaly and scores it 1 whatever its predictions say; it is what finds a surge or a fall
to a level never seen, which a prediction error learnt on a noisy series can miss (its
usual error being large) and a shape memory can too (its range being learnt from it).

Two floats and a count per series. A restored detector whose state has no extremes (an
older version's) learns them again before it judges by them.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any


@dataclass
class Extremes:
    low: float = 0.0
    high: float = 0.0
    seen: int = 0

    def update(self, value: float, tolerance: float, after: int, noise: float = 0.0) -> bool:
        """Whether ``value`` lies past the extremes by more than ``tolerance`` of their
        distance plus ``noise``, once ``after`` points were seen; then it becomes one."""
        outside = False
        if self.seen >= after and self.high > self.low:
            margin = tolerance * (self.high - self.low) + noise
            outside = value > self.high + margin or value < self.low - margin
        if self.seen == 0:
            self.low = self.high = value
        else:
            self.low, self.high = min(self.low, value), max(self.high, value)
        self.seen += 1
        return outside

    def to_state(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_state(cls, state: dict[str, Any] | None) -> Extremes:
        return cls(**state) if state else cls()
