"""The Numenta Anomaly Benchmark's scorer, reproduced so our figures compare with its board.

It follows NAB's ``sweeper.py`` and ``optimizer.py`` (v1.1) point for point:

* the first ``min(floor(15 % of rows), 750)`` rows of a file are probation, not scored;
* a point inside a labelled window scores ``scaled_sigmoid(-(right - i + 1) / width)``
  divided by ``scaled_sigmoid(-1)`` times the TP weight, and only the best (earliest)
  detection of a window counts; a window never detected costs the FN weight;
* a point outside every window scores ``scaled_sigmoid(|i - prev_right| / (prev_width - 1))``
  times the FP weight (the full FP weight before the first window);
* detections are the points scoring at or above a threshold, and the threshold is the one
  that maximises the summed score over the whole corpus, per cost profile;
* the result is normalised as ``100 * (raw - null) / (perfect - null)``, where the null
  detector never fires (every window missed) and the perfect one fires at every window's
  first point.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

PROBATION_FRACTION = 0.15


@dataclass(frozen=True)
class CostProfile:
    name: str
    tp: float
    fp: float
    fn: float


PROFILES = (
    CostProfile("standard", tp=1.0, fp=0.11, fn=1.0),
    CostProfile("reward_low_FP_rate", tp=1.0, fp=0.22, fn=1.0),
    CostProfile("reward_low_FN_rate", tp=1.0, fp=0.11, fn=2.0),
)


def scaled_sigmoid(position: float) -> float:
    """NAB's weighting of a detection by its position relative to a window's right edge."""
    if position >= 3.0:
        return -1.0
    return 2.0 / (1.0 + math.exp(5.0 * position)) - 1.0


MAX_TP = scaled_sigmoid(-1.0)


def probation_length(rows: int, fraction: float = PROBATION_FRACTION) -> float:
    return min(math.floor(fraction * rows), fraction * 5000)


@dataclass(frozen=True)
class ScoredPoint:
    """One point of one file: its detector score, and what a detection there would earn
    (already weighted for the profile); ``window`` is None outside windows."""

    anomaly_score: float
    sweep_score: float
    window: str | None


def sweep(name: str, timestamps: Sequence[object], scores: Sequence[float],
          windows: Iterable[tuple[object, object]], cost: CostProfile) -> list[ScoredPoint]:
    """The points of one file outside probation, each with what detecting it is worth.

    ``timestamps`` and the window limits must be comparable values (NAB parses both to
    datetimes); window limits are points of the file.
    """
    if len(timestamps) != len(scores):
        raise ValueError(f"{name}: {len(timestamps)} timestamps but {len(scores)} scores")
    index = {t: i for i, t in enumerate(timestamps)}
    missing = [t for limits in windows for t in limits if t not in index]
    if missing:
        raise ValueError(f"{name}: window limit {missing[0]} is not a timestamp of the file")
    pending = sorted((index[a], index[b]) for a, b in windows)
    probation = probation_length(len(timestamps))
    out: list[ScoredPoint] = []
    current: tuple[int, int] | None = None
    previous: tuple[int, int] | None = None
    for i, score in enumerate(scores):
        if current is None and pending and i == pending[0][0]:
            current = pending.pop(0)
        if current is not None:
            left, right = current
            width = right - left + 1
            value = scaled_sigmoid(-(right - i + 1) / width) * cost.tp / MAX_TP
            window: str | None = f"{name}|{left}"
        else:
            if previous is None:
                position = 3.0
            else:
                prev_left, prev_right = previous
                position = abs(prev_right - i) / float(prev_right - prev_left)
            value = scaled_sigmoid(position) * cost.fp
            window = None
        if i >= probation:
            out.append(ScoredPoint(score, value, window))
        if current is not None and i == current[1]:
            previous, current = current, None
    return out


@dataclass(frozen=True)
class ThresholdScore:
    threshold: float
    score: float
    tp: int
    fp: int


def scores_by_threshold(points: Iterable[ScoredPoint], cost: CostProfile) -> list[ThresholdScore]:
    """The corpus score for every distinct threshold (detections: score >= threshold)."""
    ordered = sorted(points, key=lambda p: p.anomaly_score, reverse=True)
    parts: dict[str, float] = {p.window: -cost.fn for p in ordered if p.window is not None}
    fp_total = 0.0
    window_total = sum(parts.values())
    tp = fp = 0
    threshold = 1.1
    out: list[ThresholdScore] = []
    for p in ordered:
        if p.anomaly_score != threshold:
            out.append(ThresholdScore(threshold, window_total + fp_total, tp, fp))
            threshold = p.anomaly_score
        if p.window is None:
            fp += 1
            fp_total += p.sweep_score
        else:
            tp += 1
            best = parts[p.window]
            if p.sweep_score > best:
                window_total += p.sweep_score - best
                parts[p.window] = p.sweep_score
    out.append(ThresholdScore(threshold, window_total + fp_total, tp, fp))
    return out


@dataclass(frozen=True)
class ProfileResult:
    profile: str
    threshold: float
    raw: float
    null: float
    perfect: float
    tp: int
    fp: int

    @property
    def normalised(self) -> float:
        return 100.0 * (self.raw - self.null) / (self.perfect - self.null)


def score_corpus(files: dict[str, tuple[Sequence[object], Sequence[float]]],
                 windows: dict[str, list[tuple[object, object]]],
                 cost: CostProfile) -> ProfileResult:
    """Best-threshold score of a detector over a corpus ``{name: (timestamps, scores)}``."""
    points: list[ScoredPoint] = []
    for name, (timestamps, scores) in files.items():
        points.extend(sweep(name, timestamps, scores, windows.get(name, []), cost))
    scored_windows: dict[str, float] = {}
    for p in points:
        if p.window is not None:
            scored_windows[p.window] = max(scored_windows.get(p.window, -math.inf), p.sweep_score)
    null = -cost.fn * len(scored_windows)
    perfect = sum(scored_windows.values())
    best = max(scores_by_threshold(points, cost), key=lambda s: s.score)
    return ProfileResult(cost.name, best.threshold, best.score, null, perfect, best.tp, best.fp)
