"""Leave-one-category-out selection and knob sensitivity: plain functions over a table of
scores (candidate x category), so they are tested without running a detector."""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

Scores = Mapping[str, float | None]   # category -> normalised score (None: no windows)


def training_mean(scores: Scores, training: Sequence[str]) -> float:
    """Mean of the training categories' scores; categories without windows have none."""
    known = [scores[c] for c in training if scores.get(c) is not None]
    return sum(known) / len(known) if known else -math.inf  # type: ignore[arg-type]


def select(table: Sequence[Scores], training: Sequence[str]) -> int:
    """The candidate with the best mean over the training categories (the first on ties,
    so the default, listed first, wins unless another is strictly better)."""
    best, best_mean = 0, -math.inf
    for i, scores in enumerate(table):
        mean = training_mean(scores, training)
        if mean > best_mean:
            best, best_mean = i, mean
    return best


def folds(table: Sequence[Scores], categories: Sequence[str]) -> dict[str, int]:
    """For each held-out category, the candidate chosen on the other ones."""
    return {held: select(table, [c for c in categories if c != held]) for held in categories}


@dataclass(frozen=True)
class Moved:
    """One candidate: a knob moved by a factor, and what it scored."""

    knob: str
    factor: float
    value: float
    full: float
    worst: float               # lowest per-category score (categories with windows)


@dataclass(frozen=True)
class Sensitivity:
    knob: str
    value: float
    full: dict[float, float]   # factor -> full dev score (1.0: the default)
    worst: dict[float, float]  # factor -> lowest per-category score
    swing: float               # largest change of the full score from the default's

    @property
    def worst_swing(self) -> float:
        return max(abs(w - self.worst[1.0]) for w in self.worst.values())


def sensitivity(default_value: Mapping[str, float], default_full: float,
                default_worst: float, moves: Sequence[Moved]) -> list[Sensitivity]:
    """Per knob, the scores at each factor and the largest swing, most sensitive first."""
    out = []
    for knob, value in default_value.items():
        mine = [m for m in moves if m.knob == knob]
        full = {1.0: default_full, **{m.factor: m.full for m in mine}}
        worst = {1.0: default_worst, **{m.factor: m.worst for m in mine}}
        swing = max(abs(f - default_full) for f in full.values())
        out.append(Sensitivity(knob, value, dict(sorted(full.items())),
                               dict(sorted(worst.items())), swing))
    return sorted(out, key=lambda s: -s.swing)


def worst_of(scores: Scores) -> float:
    known = [s for s in scores.values() if s is not None]
    return min(known) if known else math.nan
