"""The live population's distributions, as mergeable KLL sketches that can retract.

Each profile-updates partition keeps, per metric, a sketch of the values added and one
of the values retracted (a customer's previous point, when their point changes or they
are erased or merged away): the live distribution is the difference. ``share_below`` is
then ``(n_added x rank_added(v) - n_retracted x rank_retracted(v)) / (n_added -
n_retracted)``, whose error is the sketch's normalised rank error times
``n_added / n_live``; the writer rebuilds a partition's sketches from its points when
that ratio grows (see scoring's population module).
"""

from __future__ import annotations

import bisect
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field

from datasketches import kll_doubles_sketch

from .rfm import FREQUENCY, MONETARY, RECENCY, VALUE

METRICS = (RECENCY, FREQUENCY, MONETARY, VALUE)
SKETCH_K = 400


def new_sketch() -> kll_doubles_sketch:
    return kll_doubles_sketch(SKETCH_K)


@dataclass
class MetricSketches:
    added: kll_doubles_sketch = field(default_factory=new_sketch)
    retracted: kll_doubles_sketch = field(default_factory=new_sketch)

    @property
    def live(self) -> int:
        return self.added.n - self.retracted.n

    def merge(self, other: MetricSketches) -> None:
        self.added.merge(other.added)
        self.retracted.merge(other.retracted)

    def share_below(self, value: float, *, inclusive: bool = False) -> float:
        live = self.live
        if live <= 0 or self.added.is_empty():
            return 0.0
        below = self.added.n * self.added.get_rank(value, inclusive)
        if not self.retracted.is_empty():
            below -= self.retracted.n * self.retracted.get_rank(value, inclusive)
        return min(1.0, max(0.0, below / live))

    def to_bytes(self) -> tuple[bytes, bytes]:
        return self.added.serialize(), self.retracted.serialize()

    @classmethod
    def from_bytes(cls, added: bytes, retracted: bytes) -> MetricSketches:
        return cls(kll_doubles_sketch.deserialize(added),
                   kll_doubles_sketch.deserialize(retracted))


@dataclass
class SketchSet:
    """One metric's sketches of every partition, read without merging them: a KLL merge
    flips coins, so two services merging the same sketches would rank a customer a
    little differently (r 4 in one, r 5 in the other). Summing the partitions' ranks is
    deterministic, and no less exact."""

    parts: list[MetricSketches] = field(default_factory=list)

    @property
    def live(self) -> int:
        return sum(p.live for p in self.parts)

    @property
    def added_n(self) -> int:
        return sum(p.added.n for p in self.parts)

    @property
    def retracted_n(self) -> int:
        return sum(p.retracted.n for p in self.parts)

    @property
    def retained(self) -> int:
        return sum(p.added.num_retained + p.retracted.num_retained for p in self.parts)

    def rank_error(self) -> float:
        return max((p.added.normalized_rank_error(False) for p in self.parts
                    if not p.added.is_empty()), default=0.0)

    def bounds(self) -> tuple[float, float] | None:
        filled = [p.added for p in self.parts if not p.added.is_empty()]
        if not filled:
            return None
        return min(a.get_min_value() for a in filled), max(a.get_max_value() for a in filled)

    def share_below(self, value: float, *, inclusive: bool = False) -> float:
        live = self.live
        if live <= 0:
            return 0.0
        below = 0.0
        for p in self.parts:
            if not p.added.is_empty():
                below += p.added.n * p.added.get_rank(value, inclusive)
            if not p.retracted.is_empty():
                below -= p.retracted.n * p.retracted.get_rank(value, inclusive)
        return min(1.0, max(0.0, below / live))


@dataclass
class SketchPopulation:
    """:class:`rapport.shared.scores.rfm.Population` over the sketches of every partition."""

    metrics: dict[str, SketchSet] = field(
        default_factory=lambda: {m: SketchSet() for m in METRICS})

    def share_below(self, metric: str, value: float) -> float:
        return self.metrics[metric].share_below(value)

    def share_above(self, metric: str, value: float) -> float:
        return 1.0 - self.metrics[metric].share_below(value, inclusive=True) \
            if self.metrics[metric].live > 0 else 0.0

    def size(self, metric: str) -> int:
        return max(0, self.metrics[metric].live)

    def quantiles(self, metric: str, shares: Iterable[float]) -> list[float | None]:
        """Approximate values at these shares of the live population (for ops)."""
        sketch = self.metrics[metric]
        bounds = sketch.bounds()
        if sketch.live <= 0 or bounds is None:
            return [None for _ in shares]
        out = []
        for share in shares:
            lo, hi = bounds
            for _ in range(40):  # bisect share_below (the difference has no quantile call)
                mid = (lo + hi) / 2
                lo, hi = (mid, hi) if sketch.share_below(mid) < share else (lo, mid)
            out.append(round(hi, 4))
        return out

    @classmethod
    def merged(cls, parts: Iterable[Mapping[str, MetricSketches]]) -> SketchPopulation:
        """The partitions' sketches side by side (see :class:`SketchSet`)."""
        pop = cls()
        for part in parts:
            for metric, sketches in part.items():
                if metric in pop.metrics:
                    pop.metrics[metric].parts.append(sketches)
        return pop


class ListPopulation:
    """An exact population from plain lists (tests, evaluations)."""

    def __init__(self, values: Mapping[str, Iterable[float]]) -> None:
        self._values = {k: sorted(v) for k, v in values.items()}

    def share_below(self, metric: str, value: float) -> float:
        values = self._values.get(metric, [])
        return bisect.bisect_left(values, value) / len(values) if values else 0.0

    def share_above(self, metric: str, value: float) -> float:
        values = self._values.get(metric, [])
        return 1 - bisect.bisect_right(values, value) / len(values) if values else 0.0

    def size(self, metric: str) -> int:
        return len(self._values.get(metric, []))
