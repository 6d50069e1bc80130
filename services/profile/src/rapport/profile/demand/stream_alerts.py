"""Stream alerts: ops' plainer question of the detector's state, one they can act on.

Is demand far from what it usually is now (the time of day's profile where the series has
one, else its slow mean), by many of its usual deviations and by a share worth acting on?
One point far off opens an alert, a moderate change must hold for two; the alert closes
when demand is back near that baseline (or after ``alert_max_points``: then it was a
shift, and the baselines learn it).
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import TYPE_CHECKING, Any, Literal

if TYPE_CHECKING:
    from .detector import DetectorConfig

Direction = Literal["up", "down"]


@dataclass
class AlertState:
    active: Direction | None = None
    alert_base: float = 0.0
    pending: bool | None = None
    alert_points: int = 0

    def step(self, value: float, base: float, scale: float, mean: float, warm: bool,
             c: DetectorConfig) -> tuple[Literal["start", "end"] | None, float, float]:
        """The point's alert change, its magnitude against the baseline, and that baseline."""
        alert: Literal["start", "end"] | None = None
        if self.active is None:
            magnitude = (value - base) / abs(base) if base else 0.0
            z = (value - base) / scale
            off = warm and abs(z) >= c.alert_z and abs(magnitude) >= c.alert_magnitude
            # One point far off opens an alert; a moderate change must hold for two.
            if off and (abs(z) >= 2 * c.alert_z or self.pending == (z > 0)):
                self.active, alert = ("up" if z > 0 else "down"), "start"
                self.alert_base, self.alert_points = base, 0
            self.pending = (z > 0) if off else None
        else:
            # Judged against the baseline from before the alert (or the time of day's).
            if base == mean:
                base = self.alert_base
            magnitude = (value - base) / abs(base) if base else 0.0
            self.alert_points += 1
            if (abs(value - base) < 2 * scale or abs(magnitude) < c.alert_magnitude / 2
                    or self.alert_points >= c.alert_max_points):
                self.active, alert = None, "end"
        return alert, magnitude, base

    def to_state(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_state(cls, state: dict[str, Any]) -> AlertState:
        return cls(**state)
