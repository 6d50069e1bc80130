"""A tiny stand-in for the demand spike detector, with the real one's interface: an
alert starts when a point is ``ratio`` times its running mean (after ``warmup``
points) and ends at the first normal point."""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any

from rapport.profile.demand.closing import DetectorKind
from rapport.profile.demand.detector import Reading


@dataclass
class ThresholdDetector:
    step_s: float
    warmup: int = 3
    ratio: float = 3.0
    floor: float = 1.0
    n: int = 0
    mean: float = 0.0
    active: bool = False
    last_at: float | None = None

    def update(self, at: float, value: float) -> Reading:
        assert self.last_at is None or at > self.last_at, "a bucket was fed twice"
        self.last_at = at
        expected = self.mean
        abnormal = self.n >= self.warmup and value > self.ratio * max(expected, self.floor)
        alert = None
        if abnormal != self.active:
            alert = "start" if abnormal else "end"
            self.active = abnormal
        if not abnormal:
            self.n += 1
            self.mean += (value - self.mean) / self.n
        magnitude = (value - expected) / expected if expected else float(value)
        return Reading(score=1.0 if abnormal else 0.0, expected=expected,
                       direction="up" if abnormal else None, alert=alert, magnitude=magnitude)

    def to_state(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_state(cls, state: dict[str, Any]) -> ThresholdDetector:
        return cls(**state)


def threshold_detectors(**kw: Any) -> DetectorKind:
    return DetectorKind(new=lambda step_s: ThresholdDetector(step_s=step_s, **kw),
                        restore=ThresholdDetector.from_state)
