"""The detector's predictors of the next point: the recent level (EWMA), the same time
yesterday and the same time last week (seasonal profiles), each with the running size of
its own errors, and the series' slow mean and spread (the floor of every error size).

Plain floats and lists, so a point costs a few dozen operations; the profiles hold single
precision values, half the state, restored exactly (base64 of little-endian floats).
"""

from __future__ import annotations

import base64
import math
import struct
from dataclasses import asdict, dataclass, field
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from .detector import DetectorConfig

_F32 = struct.Struct("<f")


def f32(x: float) -> float:
    return _F32.unpack(_F32.pack(x))[0]


def pack(values: list[float | None]) -> str:
    data = struct.pack(f"<{len(values)}f", *(math.nan if v is None else v for v in values))
    return base64.b64encode(data).decode()


def unpack(text: str) -> list[float | None]:
    raw = base64.b64decode(text)
    return [None if math.isnan(v) else v for v in struct.unpack(f"<{len(raw) // 4}f", raw)]


LEVEL, DAY, WEEK = 0, 1, 2


@dataclass
class Predictors:
    level: float = 0.0
    mean: float = 0.0
    spread: float = 0.0
    errors: list[float] = field(default_factory=lambda: [0.0, 0.0, 0.0])
    seen: list[int] = field(default_factory=lambda: [0, 0, 0])
    day: list[float | None] = field(default_factory=list)
    week: list[float | None] = field(default_factory=list)

    @classmethod
    def for_step(cls, step_s: float, max_slots: int) -> Predictors:
        """Profiles of a day and a week of points, where they fit in ``max_slots``."""
        per_day = round(86400 / step_s) if step_s > 0 else 0
        return cls(day=[None] * per_day if 2 <= per_day <= max_slots else [],
                   week=[None] * (per_day * 7) if 2 <= per_day * 7 <= max_slots else [])

    def predictions(self, slot: int, n: int) -> list[float | None]:
        day = self.day[slot % len(self.day)] if self.day else None
        week = self.week[slot % len(self.week)] if self.week else None
        return [self.level if n else None, day, week]

    @staticmethod
    def widening(k: int, gap: int) -> float:
        """How much predictor ``k``'s error grows ``gap`` buckets after the last point: the
        level's as a random walk's (sqrt of the gap), the profiles' not at all."""
        return math.sqrt(gap) if k == LEVEL and gap > 1 else 1.0

    def error(self, k: int, gap: int) -> float:
        """Predictor ``k``'s usual error ``gap`` buckets after the last point."""
        return self.errors[k] * self.widening(k, gap)

    def best(self, predictions: list[float | None], value: float, floor: float,
             gap: int = 1) -> tuple[float, float]:
        """The prediction of the predictor lately most accurate, and its usual error."""
        best, best_error = None, math.inf
        for k, p in enumerate(predictions):
            error = self.error(k, gap)
            if p is not None and self.seen[k] >= 1 and error < best_error:
                best, best_error = k, error
        if best is None:
            return value, floor
        return predictions[best], best_error + floor  # type: ignore[return-value]

    def learn(self, slot: int, value: float, predictions: list[float | None],
              floor: float, n: int, warm: bool, c: DetectorConfig, gap: int = 1) -> None:
        """Every predictor learns the point; the profiles a bounded amount of it once warm
        (a one-off spike barely moves tomorrow's expectation)."""
        for k, p in enumerate(predictions):
            if p is not None:
                err = abs(value - p) / self.widening(k, gap)   # as a one-step error
                self.errors[k] = err if self.seen[k] == 0 else (
                    self.errors[k] + c.error_alpha * (err - self.errors[k]))
                self.seen[k] += 1
        if n == 0:
            self.level = self.mean = value
        else:
            # Once warm the level moves a bounded step, as the profiles do: a one-point
            # spike barely moves it, so the return to normal is not a second surprise.
            bound = c.level_clip * (self.errors[LEVEL] + floor) if warm else math.inf
            self.level += c.level_alpha * max(-bound, min(bound, value - self.level))
            self.mean += c.scale_alpha * (value - self.mean)
            self.spread += c.scale_alpha * (abs(value - self.mean) - self.spread)
        for k, profile in ((DAY, self.day), (WEEK, self.week)):
            if profile:
                i = slot % len(profile)
                old = profile[i]
                if old is None:
                    profile[i] = f32(value)
                else:
                    bound = c.season_clip * (self.errors[k] + floor) if warm else math.inf
                    profile[i] = f32(old + c.season_alpha * max(-bound, min(bound, value - old)))

    def baseline(self, slot: int, n: int, c: DetectorConfig) -> tuple[float, float]:
        """What demand usually is at this point, and by how much it usually differs: the
        time of day's (or week's) profile where it explains the series better than the
        slow mean does, else the slow mean. Alerts are judged against it, not against the
        fast level, which soon learns a surge."""
        # The spread starts from 0: corrected for that start, as Adam corrects its moments.
        spread = self.spread / (1.0 - (1.0 - c.scale_alpha) ** max(n, 1))
        floor = c.scale_floor * spread + 1e-9
        _, day, week = self.predictions(slot, n)
        options = [(self.errors[k] + floor, p)
                   for k, p, period in ((DAY, day, len(self.day)), (WEEK, week, len(self.week)))
                   if p is not None and self.seen[k] >= period
                   and self.errors[k] < 0.8 * spread]
        if options:
            scale, guess = min(options)
            return guess, scale
        return self.mean, spread + 1e-9

    def to_state(self) -> dict[str, Any]:
        return {**asdict(self), "day": pack(self.day), "week": pack(self.week)}

    @classmethod
    def from_state(cls, state: dict[str, Any]) -> Predictors:
        return cls(**{**state, "day": unpack(state["day"]), "week": unpack(state["week"])})
