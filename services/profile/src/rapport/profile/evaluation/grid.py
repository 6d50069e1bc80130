"""The grid of candidate configurations, and their scores on every file, computed once.

Candidates are the default configuration and each scored knob moved by a factor
(x0.5, x0.75, x1.25, x2): what leave-one-category-out picks from and what the sensitivity
table reads. The detector runs once per (candidate, file), in worker processes; every
fold and table is then derived from those scores without running it again.
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable, Sequence
from concurrent.futures import ProcessPoolExecutor, as_completed
from dataclasses import dataclass, fields, replace

import numpy as np

from rapport.profile.demand.detector import DetectorConfig
from rapport.profile.demand.evaluate import Series, detect

FACTORS = (0.5, 0.75, 1.25, 2.0)


@dataclass(frozen=True)
class Candidate:
    knob: str | None           # None: the default configuration
    factor: float
    config: DetectorConfig


def scored_knobs(config: DetectorConfig) -> list[str]:
    """The knobs that change the anomaly score (the ``alert_*`` ones only change alerts)."""
    return [f.name for f in fields(config) if not f.name.startswith("alert_")]


def moved(config: DetectorConfig, knob: str, factor: float) -> DetectorConfig:
    """The knob times the factor: a count stays a whole number >= 1, a weight (``*_alpha``,
    ``*_rate``) stays <= 1 (an EWMA weight above 1 is no configuration at all)."""
    value = getattr(config, knob)
    if isinstance(value, int):
        new: float = max(1, round(value * factor))
    else:
        new = value * factor
        if knob.endswith(("_alpha", "_rate")):
            new = min(new, 1.0)
    return replace(config, **{knob: new})


def candidates(config: DetectorConfig, factors: Sequence[float] = FACTORS) -> list[Candidate]:
    out = [Candidate(None, 1.0, config)]
    for knob in scored_knobs(config):
        out += [Candidate(knob, f, moved(config, knob, f)) for f in factors]
    return out


_CORPUS: list[Series] = []


def _init(corpus: list[Series]) -> None:
    global _CORPUS
    _CORPUS = corpus


def _run(job: tuple[int, int, DetectorConfig]) -> tuple[int, int, np.ndarray, float]:
    c, f, config = job
    started = time.perf_counter()
    scores = np.array(detect(_CORPUS[f], config), dtype=np.float64)
    return c, f, scores, time.perf_counter() - started


@dataclass
class Grid:
    """``scores[c][f]``: the scores candidate ``c`` gives every point of file ``f``."""

    candidates: list[Candidate]
    scores: list[list[np.ndarray]]
    default_seconds: float      # detector time of the default configuration, all files


def compute(corpus: list[Series], cands: list[Candidate], workers: int | None = None,
            advance: Callable[[int], None] = lambda n: None) -> Grid:
    """Every candidate on every file, longest files first, in ``workers`` processes."""
    workers = workers or min(2, os.cpu_count() or 1)
    jobs = sorted(((c, f, cand.config) for c, cand in enumerate(cands)
                   for f in range(len(corpus))), key=lambda j: -len(corpus[j[1]].values))
    scores: list[list[np.ndarray]] = [[np.zeros(0)] * len(corpus) for _ in cands]
    seconds = 0.0
    if workers <= 1:
        _init(corpus)
        done = map(_run, jobs)
        for c, f, s, spent in done:
            scores[c][f] = s
            seconds += spent if c == 0 else 0.0
            advance(len(s))
        return Grid(cands, scores, seconds)
    with ProcessPoolExecutor(workers, initializer=_init, initargs=(corpus,)) as pool:
        for future in as_completed([pool.submit(_run, j) for j in jobs]):
            c, f, s, spent = future.result()
            scores[c][f] = s
            seconds += spent if c == 0 else 0.0
            advance(len(s))
    return Grid(cands, scores, seconds)
