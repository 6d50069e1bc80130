"""Shape novelty: the recent shape of a series against a bounded memory of prototypes.

The shape is the block means of the last ``shape_width`` blocks of ``shape_block`` buckets
each (spans of time, so a missing point shifts no block; the current block partial), in
shares of the range learnt while warming up. It is compared with at
most ``shape_memory`` prototype shapes (adaptive-resonance style): one within
``shape_vigilance`` resonates and is refined; otherwise the shape is new, is remembered
(replacing the least recently matched) and is novel by its distance. Slow drifts and
changed daily patterns, which no single point betrays, show up here.
"""

from __future__ import annotations

import base64
import math
from dataclasses import dataclass, field, fields
from typing import TYPE_CHECKING, Any

import numpy as np

if TYPE_CHECKING:
    from .detector import DetectorConfig


@dataclass
class Shapes:
    lo: float = math.inf
    hi: float = -math.inf
    block_sum: float = 0.0
    block_count: int = 0
    block_id: int | None = None     # the time block being filled (slot // shape_block)
    steps: list[float] = field(default_factory=list)
    prototypes: np.ndarray = field(default_factory=lambda: np.zeros((0, 0), dtype="<f4"))
    matched: list[int] = field(default_factory=list)
    last_novel: int = -(10**9)
    last_distance: float = 0.0      # the distance of the last shape that scored
    novelties: float = 0.0          # novel shapes lately (decayed count)

    def update(self, n: int, slot: int, value: float, noise: float,
               c: DetectorConfig) -> float:
        """The point's novelty: the new shape's distance from the nearest prototype,
        weighed down where new shapes keep coming; 0 when the shape is known, during the
        first ``warmup_points`` points, and within ``shape_rest`` points of the last shape
        that scored unless it is farther than that one."""
        novelty = self._distance(n, slot, value, noise, c)
        if novelty:
            novelty /= 1.0 + c.novelty_penalty * self.novelties
        self.novelties = self.novelties * 0.5 ** (1.0 / c.novelty_half_life) + (
            1.0 if novelty else 0.0)
        return novelty

    def _step(self, slot: int, value: float, c: DetectorConfig) -> list[float]:
        """Add the point to its block; the steps the shape is made of, the block just
        filled included. Blocks are spans of time (``shape_block`` buckets), not of
        points, so a missing point does not shift every later block's phase."""
        block = slot // c.shape_block
        if self.block_id is not None and block != self.block_id and self.block_count:
            self.steps.append(self.block_sum / self.block_count)
            del self.steps[:-c.shape_width]
            self.block_sum, self.block_count = 0.0, 0
        self.block_id = block
        self.block_sum += value
        self.block_count += 1
        if self.block_count >= c.shape_block:
            return [*self.steps, self.block_sum / self.block_count]
        return self.steps

    def _distance(self, n: int, slot: int, value: float, noise: float,
                  c: DetectorConfig) -> float:
        if n < c.range_points:
            self.lo, self.hi = min(self.lo, value), max(self.hi, value)
        steps = self._step(slot, value, c)
        if len(steps) < c.shape_width:
            return 0.0
        span = (self.hi - self.lo) or 1.0
        last = steps[-1]
        if c.partial_min <= self.block_count < c.shape_block:
            # The block being filled: how far its mean so far is from the last full one,
            # less what noise alone moves a mean of that many points (soft threshold);
            # not before it holds partial_min points: one burst is no shape.
            gap = self.block_sum / self.block_count - last
            shrink = c.partial_noise * noise / math.sqrt(self.block_count)
            last += math.copysign(max(0.0, abs(gap) - shrink), gap)
        vector = np.array([*steps[len(steps) - c.shape_width:-1], last]) - self.lo
        if len(self.prototypes) and self.prototypes.shape[1] == len(vector):
            distances = ((self.prototypes - vector) ** 2).sum(axis=1)
            best = int(distances.argmin())
            distance = math.sqrt(float(distances[best]) / len(vector)) / span
        else:
            best, distance = -1, math.inf
            self.prototypes = np.zeros((0, len(vector)), dtype="<f4")
            self.matched = []
        if distance <= c.shape_vigilance:
            self.prototypes[best] += c.shape_rate * (vector - self.prototypes[best])
            self.matched[best] = n
            return 0.0
        if len(self.prototypes) < c.shape_memory:
            self.prototypes = np.vstack([self.prototypes, vector]).astype("<f4")
            self.matched.append(n)
        else:
            oldest = min(range(len(self.matched)), key=self.matched.__getitem__)
            self.prototypes[oldest], self.matched[oldest] = vector, n
        # Within shape_rest of a shape that scored only a farther one does: the first
        # points of a surge make a shape barely new, its full shape a much newer one.
        if n < c.warmup_points or (n - self.last_novel <= c.shape_rest
                                 and distance <= self.last_distance):
            return 0.0
        self.last_novel, self.last_distance = n, distance
        return min(distance, 1.0) / c.shape_vigilance

    def to_state(self) -> dict[str, Any]:
        state = {f.name: getattr(self, f.name) for f in fields(self)}
        state["prototypes"] = {"rows": int(self.prototypes.shape[0]),
                               "cols": int(self.prototypes.shape[1]),
                               "data": base64.b64encode(self.prototypes.tobytes()).decode()}
        state["steps"], state["matched"] = list(self.steps), list(self.matched)
        return state

    @classmethod
    def from_state(cls, state: dict[str, Any]) -> Shapes:
        protos = state["prototypes"]
        flat = np.frombuffer(base64.b64decode(protos["data"]), dtype="<f4").copy()
        bounds = {"lo": math.inf if state["lo"] is None else state["lo"],   # JSON has no inf
                  "hi": -math.inf if state["hi"] is None else state["hi"]}
        return cls(**{**state, **bounds,
                      "prototypes": flat.reshape(protos["rows"], protos["cols"])})
