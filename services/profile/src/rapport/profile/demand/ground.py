"""Unvisited ground: a point inside the range a series has taken, but far from every value
it ever took. New territory (:mod:`.extremes`) finds a level past the extremes; this finds
one in a gap between them: a spike of a height never seen where every spike had one
height, a fall onto the empty ground between two levels the series took.

The gap must be wider than a margin (a share of the range and a few usual errors, as new
territory's) and than ``ratio`` of the point's distance from the series' mean: a heavy
tail (bursts of any height, Student's t) leaves gaps between its rare far values, and a
new far value lands in one of them all the time; such a gap is narrow next to how far out
it lies, one beside the bulk is not.

A bitmap of at most ``bins`` slices (a Python int, so a point costs a few integer
operations). Slices are a power of two wide and aligned on its multiples, so when the
range outgrows them, two neighbours merge into one exactly: a slice marked visited always
holds a value that was seen, and the distance to the nearest one is known to within a
slice, however often the range widened. Constant memory per series.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

ALL = -1   # every slice visited: an older state, whose ground is unknown, raises nothing


@dataclass
class Ground:
    scale: int | None = None   # slices are 2**scale wide (None: no range yet)
    offset: int = 0            # bit 0 is the slice [offset, offset + 1) * 2**scale
    visited: int = 0           # bit i: a value fell in slice offset + i

    def _index(self, value: float) -> int:
        assert self.scale is not None
        return math.floor(math.ldexp(value, -self.scale))

    def _mark(self, value: float) -> None:
        self.visited |= 1 << (self._index(value) - self.offset)

    def _merge(self, levels: int) -> None:
        """Slices ``2**levels`` times as wide: each new one is the union of old ones."""
        visited, offset, self.visited = self.visited, self.offset, 0
        assert self.scale is not None
        self.scale += levels
        self.offset = offset >> levels
        while visited:
            i = (visited & -visited).bit_length() - 1
            visited &= visited - 1
            self.visited |= 1 << (((offset + i) >> levels) - self.offset)

    def _fit(self, lowest: float, highest: float, bins: int) -> None:
        """Slices that hold ``[lowest, highest]`` (the extremes: values seen) in ``bins``."""
        # 2**need > (highest - lowest) / bins; never finer than the values' precision.
        need = max(math.frexp((highest - lowest) / bins)[1],
                   math.frexp(max(abs(lowest), abs(highest)))[1] - 53)
        if self.scale is None:
            self.scale = need
            self.offset, self.visited = self._index(lowest), 0
            self._mark(lowest)
            self._mark(highest)
        if need - 1 > self.scale:
            self._merge(need - 1 - self.scale)
        while self._index(highest) - self._index(lowest) >= bins:
            self._merge(1)
        low = self._index(lowest)
        if low < self.offset:
            self.visited <<= self.offset - low
            self.offset = low

    def clearance(self, value: float) -> float:
        """How far ``value`` at least lies from every value seen: the distance to the
        near edge of the nearest visited slice (``math.inf`` before any is)."""
        if self.visited == ALL:
            return 0.0
        if self.scale is None or not self.visited:
            return math.inf
        lowest_bit = (self.visited & -self.visited).bit_length() - 1
        low_edge = math.ldexp(self.offset + lowest_bit, self.scale)
        high_edge = math.ldexp(self.offset + self.visited.bit_length(), self.scale)
        if not low_edge <= value < high_edge:
            return low_edge - value if value < low_edge else value - high_edge
        i = self._index(value) - self.offset
        below = self.visited & ((1 << (i + 1)) - 1)
        above = self.visited >> i
        slices = i - (below.bit_length() - 1)
        if above:
            slices = min(slices, (above & -above).bit_length() - 1)
        return math.ldexp(max(0, slices - 1), self.scale)

    def update(self, value: float, lowest: float, highest: float, margin: float,
               mean: float, ratio: float, bins: int, judge: bool = True) -> bool:
        """Whether ``value`` lies farther from every value seen than ``margin`` and than
        ``ratio`` of its distance from ``mean`` (only when ``judge``); then its slice is
        visited. ``lowest`` and ``highest`` are the series' extremes, ``value`` included."""
        if highest <= lowest or self.visited == ALL:
            return False
        self._fit(lowest, highest, bins)
        gap = self.clearance(value)
        self._mark(value)
        return judge and gap > margin and gap > ratio * abs(value - mean)

    def to_state(self) -> dict[str, Any]:
        # Strings: the bitmap (and the offset) can be wider than JSON's integers.
        return {"scale": self.scale, "offset": str(self.offset),
                "visited": "all" if self.visited == ALL else format(self.visited, "x")}

    @classmethod
    def from_state(cls, state: dict[str, Any] | None) -> Ground:
        if not state:
            return cls(visited=ALL)
        visited = ALL if state["visited"] == "all" else int(state["visited"], 16)
        return cls(state["scale"], int(state["offset"]), visited)
