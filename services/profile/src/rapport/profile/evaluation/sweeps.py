"""NAB's scorer over arrays, so that many configurations can be scored on the same files.

What a detection at a point is worth (its sweep value, its window) depends only on the
file's timestamps and windows, never on the detector: :func:`prepare` computes it once
per file and profile with :func:`rapport.profile.demand.nab.sweep`, and the scores of any
configuration are then judged with numpy (:func:`best_threshold`, :func:`at_threshold`),
giving exactly what :func:`rapport.profile.demand.nab.score_corpus` gives.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from rapport.profile.demand import nab


@dataclass(frozen=True)
class FileSweep:
    """One file under one cost profile: the points after probation."""

    name: str
    start: int                 # index of the first scored point (probation before it)
    value: np.ndarray          # what a detection at the point earns (FP: negative)
    window: np.ndarray         # window number in the file, -1 outside every window


def prepare(name: str, timestamps: Sequence[object],
            windows: list[tuple[object, object]], cost: nab.CostProfile) -> FileSweep:
    points = nab.sweep(name, timestamps, [0.0] * len(timestamps), windows, cost)
    ids: dict[str, int] = {}
    window = [-1 if p.window is None else ids.setdefault(p.window, len(ids)) for p in points]
    return FileSweep(name, len(timestamps) - len(points),
                     np.array([p.sweep_score for p in points], dtype=np.float64),
                     np.array(window, dtype=np.int64))


@dataclass(frozen=True)
class Result:
    """A corpus scored at one threshold; ``normalised`` is None without windows."""

    threshold: float
    raw: float
    null: float
    perfect: float
    tp: int
    fp: int

    @property
    def normalised(self) -> float | None:
        if self.perfect == self.null:
            return None
        return 100.0 * (self.raw - self.null) / (self.perfect - self.null)


def _pool(sweeps: Sequence[FileSweep], scores: Sequence[np.ndarray]
          ) -> tuple[np.ndarray, np.ndarray, np.ndarray, int]:
    """The scored points of several files as one corpus (windows numbered across files)."""
    s, v, w, offset = [], [], [], 0
    for sweep, full in zip(sweeps, scores, strict=True):
        s.append(np.asarray(full, dtype=np.float64)[sweep.start:])
        v.append(sweep.value)
        w.append(np.where(sweep.window >= 0, sweep.window + offset, -1))
        offset += int(sweep.window.max()) + 1 if sweep.window.size else 0
    return np.concatenate(s), np.concatenate(v), np.concatenate(w), offset


def _limits(v: np.ndarray, w: np.ndarray, count: int, fn: float) -> tuple[float, float]:
    inside = w >= 0
    best = np.full(count, -np.inf)
    np.maximum.at(best, w[inside], v[inside])
    return -fn * count, float(best.sum()) if count else 0.0


def best_threshold(sweeps: Sequence[FileSweep], scores: Sequence[np.ndarray],
                   cost: nab.CostProfile) -> Result:
    """NAB's best threshold over these files: the one with the highest summed score."""
    s, v, w, count = _pool(sweeps, scores)
    null, perfect = _limits(v, w, count, cost.fn)
    order = np.argsort(-s, kind="stable")
    s, v, w = s[order], v[order], w[order]
    inside = w >= 0
    fp_gain = np.where(inside, 0.0, v)
    # The first detection of a window replaces its -fn; a later one only a better value.
    idx = np.flatnonzero(inside)
    tp_gain = np.zeros_like(v)
    if idx.size:
        by_window = idx[np.argsort(w[idx], kind="stable")]
        groups = w[by_window]
        running = np.maximum.accumulate(v[by_window] + 10.0 * groups) - 10.0 * groups
        first = np.r_[True, groups[1:] != groups[:-1]]
        previous = np.where(first, -cost.fn, np.r_[0.0, running[:-1]])
        tp_gain[by_window] = running - previous
    total = null + np.cumsum(tp_gain + fp_gain)
    last_of_run = np.r_[s[1:] != s[:-1], True]
    cand = np.flatnonzero(last_of_run)
    totals = np.r_[null, total[cand]]
    pick = int(np.argmax(totals))
    if pick == 0:
        return Result(1.1, null, null, perfect, 0, 0)
    k = cand[pick - 1]
    tp = int(inside[: k + 1].sum())
    return Result(float(s[k]), float(totals[pick]), null, perfect, tp, k + 1 - tp)


def at_threshold(sweeps: Sequence[FileSweep], scores: Sequence[np.ndarray],
                 cost: nab.CostProfile, threshold: float) -> Result:
    """These files scored with a given threshold (detections: score >= threshold)."""
    s, v, w, count = _pool(sweeps, scores)
    null, perfect = _limits(v, w, count, cost.fn)
    hit = s >= threshold
    inside = w >= 0
    best = np.full(count, -cost.fn)
    np.maximum.at(best, w[hit & inside], v[hit & inside])
    raw = float(best.sum() + v[hit & ~inside].sum())
    return Result(threshold, raw, null, perfect, int((hit & inside).sum()),
                  int((hit & ~inside).sum()))
