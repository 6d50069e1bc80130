"""NAB's published detectors, scored on the same files with the same scorer as ours.

A NAB checkout keeps every detector's scores in ``results/<detector>/<category>/
<detector>_<file>.csv`` (column ``anomaly_score``). Scoring those files per category and
leave-one-category-out, exactly as ``rapport eval-spikes --leave-one-out`` scores our
detector, puts our figures next to theirs on any corpus (NAB's board itself is only over
all seven categories). A detector without results for every file of the corpus is
skipped, named in ``missing``.
"""

from __future__ import annotations

import csv
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

if TYPE_CHECKING:
    from .loo import Scorer


@dataclass(frozen=True)
class Figures:
    """One detector on one corpus, standard profile."""

    name: str
    own: dict[str, float | None]      # per category, its own best threshold
    carried: dict[str, float | None]  # per category, the threshold of the other ones
    false_positives: dict[str, int]   # per category at the carried threshold
    full: float | None                # the whole corpus, one threshold


def result_path(results: Path, detector: str, name: str) -> Path:
    category, file = name.split("/", 1)
    return results / detector / category / f"{detector}_{file}"


def load(results: Path, detector: str, names: Sequence[str],
         lengths: Sequence[int]) -> list[np.ndarray] | None:
    """The detector's scores for every file, or None when one is missing or the wrong
    length (results of another version of the data)."""
    out = []
    for name, length in zip(names, lengths, strict=True):
        path = result_path(results, detector, name)
        if not path.is_file():
            return None
        with path.open(newline="") as f:
            try:
                scores = np.array([float(r["anomaly_score"]) for r in csv.DictReader(f)])
            except (KeyError, ValueError):
                return None
        if len(scores) != length:
            return None
        out.append(scores)
    return out


def figures(name: str, scorer: Scorer, scores: list[np.ndarray]) -> Figures:
    cats = scorer.categories
    own, carried, fps = {}, {}, {}
    for c in cats:
        own[c] = scorer.best(scores, [c]).normalised
        training = [x for x in cats if x != c]
        threshold = scorer.best(scores, training).threshold if training else 1.1
        r = scorer.at(scores, [c], threshold)
        carried[c], fps[c] = r.normalised, r.fp
    return Figures(name, own, carried, fps, scorer.best(scores, cats).normalised)


def compare(results: Path, scorer: Scorer, lengths: Sequence[int]
            ) -> tuple[list[Figures], list[str]]:
    """Figures of every detector under ``results`` that covers the corpus, and the names
    of those that do not."""
    found, missing = [], []
    for detector in sorted(p.name for p in results.iterdir() if p.is_dir()):
        scores = load(results, detector, scorer.names, lengths)
        if scores is None:
            missing.append(detector)
        else:
            found.append(figures(detector, scorer, scores))
    return found, missing
