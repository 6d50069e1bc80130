"""Unvisited ground: a point inside the range a series has taken, but far from every value
it ever took. New territory (:mod:`.extremes`) finds a level past the extremes; this finds
one in a gap between them: a spike of a height never seen where every spike had one
height, a fall onto the empty ground between two levels, a flat line that starts to
oscillate past its old noise.

The gap must be wider than the margin new territory uses and than ``ratio`` of the
point's distance from the series' mean: a heavy tail (bursts of any height, Student's t)
leaves gaps between its rare far values, and a new far value lands in one of them all the
time; such a gap is narrow next to how far out it lies, one beside the bulk is not.

A bitmap of ``bins`` equal slices of the range (a Python int, so a point costs a few
integer operations) and the range it was drawn on; when the range widens, the visited
slices are drawn again on the new one. Constant memory per series.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

ALL = -1   # every slice visited: an older state, whose ground is unknown, raises nothing


@dataclass
class Ground:
    low: float = 0.0
    high: float = 0.0
    bins: int = 0
    visited: int = 0        # bit i: a value fell in slice i of [low, high]

    def _slice(self, value: float, low: float, high: float, bins: int) -> int:
        return max(0, min(bins - 1, int((value - low) / (high - low) * bins)))

    def _redraw(self, low: float, high: float, bins: int) -> None:
        """The visited slices on a new range (a range only widens)."""
        if self.visited != ALL:
            if self.high > self.low:
                width = (self.high - self.low) / self.bins
                old, redrawn = self.visited & ((1 << self.bins) - 1), 0
                while old:
                    i = (old & -old).bit_length() - 1
                    old &= old - 1
                    centre = self.low + (i + 0.5) * width
                    redrawn |= 1 << self._slice(centre, low, high, bins)
                self.visited = redrawn
            elif self.bins:   # every value so far was the one value of a zero-width range
                self.visited = 1 << self._slice(self.low, low, high, bins)
        self.low, self.high, self.bins = low, high, bins

    def gap(self, i: int) -> int:
        """Slices from slice ``i`` to the nearest visited one (``bins`` when none is)."""
        below = self.visited & ((1 << (i + 1)) - 1)
        above = self.visited >> i
        near = self.bins
        if below:
            near = i - (below.bit_length() - 1)
        if above:
            near = min(near, (above & -above).bit_length() - 1)
        return near

    def update(self, value: float, low: float, high: float, margin: float, mean: float,
               ratio: float, bins: int, judge: bool = True) -> bool:
        """Whether ``value``, on the range ``[low, high]`` of the series' extremes (value
        included), lies farther from every value seen than ``margin`` and than ``ratio``
        of its distance from ``mean`` (only when ``judge``); then its slice is visited."""
        if high <= low:
            self.low, self.high, self.bins = low, high, bins
            return False
        if (low, high, bins) != (self.low, self.high, self.bins):
            self._redraw(low, high, bins)
        i = self._slice(value, low, high, bins)
        if self.visited == ALL:
            return False
        gap = self.gap(i) * (high - low) / bins
        self.visited |= 1 << i
        return judge and gap > margin and gap > ratio * abs(value - mean)

    def to_state(self) -> dict[str, Any]:
        # Hex: the bitmap is wider than JSON's (and orjson's) integers.
        return {"low": self.low, "high": self.high, "bins": self.bins,
                "visited": "all" if self.visited == ALL else format(self.visited, "x")}

    @classmethod
    def from_state(cls, state: dict[str, Any] | None) -> Ground:
        if not state:
            return cls(visited=ALL)
        visited = ALL if state["visited"] == "all" else int(state["visited"], 16)
        return cls(state["low"], state["high"], state["bins"], visited)
