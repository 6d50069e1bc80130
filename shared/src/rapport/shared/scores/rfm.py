"""RFM by the live population's quantiles, and the named RFM segments.

A customer's r, f and m are quintiles of where they stand among the customers with a
purchase whose value differs from theirs: with ``below`` and ``above`` the shares strictly
below and strictly above, the standing is ``below / (below + above)`` and the score
``1 + floor(5 x standing)``, at most 5. Ties never split: customers with equal values get
equal scores. When most customers share the lowest value (one purchase day), all of them
get 1 and the next value ranks high; when many share the highest (bought today), all of
them get 5; a population where everyone is equal puts everyone at 3.

- r ranks the day of the last purchase (more recent is better),
- f the number of purchase days, m the total spent.

Segments come from r and fm = round((f + m) / 2) on the grid below (first published
by Putler, the 11 segments in common use):

| segment | r | fm |
|---|---|---|
| champions | 4-5 | 4-5 |
| loyal | 3-5 | 3-5 (not champions) |
| potential_loyalists | 4-5 | 2 |
| new | 5 | 1 |
| promising | 4 | 1 |
| need_attention | 3 | 2 |
| about_to_sleep | 3 | 1, or r 2 with fm 2 |
| at_risk | 1-2 | 3-5 (not cannot_lose_them) |
| cannot_lose_them | 1 | 4-5 |
| hibernating | 2 | 1, or r 1 with fm 2 |
| lost | 1 | 1 |

A customer without any purchase is a ``prospect`` with r = f = m = 1.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol

RECENCY, FREQUENCY, MONETARY, VALUE = "recency", "frequency", "monetary", "value"
PROSPECT = "prospect"

SEGMENTS: dict[str, str] = {
    "champions": "bought recently, often and for much",
    "loyal": "buy often and spend well",
    "potential_loyalists": "recent customers with average frequency",
    "new": "bought for the first time very recently",
    "promising": "recent first-time buyers",
    "need_attention": "above average, but not bought lately",
    "about_to_sleep": "below average and fading",
    "at_risk": "spent much and often, but long ago",
    "cannot_lose_them": "were among the best, gone the longest",
    "hibernating": "last purchase long ago, few and small",
    "lost": "lowest on every count",
}

_ROWS = {  # r -> segment for fm = 1..5
    5: ("new", "potential_loyalists", "loyal", "champions", "champions"),
    4: ("promising", "potential_loyalists", "loyal", "champions", "champions"),
    3: ("about_to_sleep", "need_attention", "loyal", "loyal", "loyal"),
    2: ("hibernating", "about_to_sleep", "at_risk", "at_risk", "at_risk"),
    1: ("lost", "hibernating", "at_risk", "cannot_lose_them", "cannot_lose_them"),
}
GRID: dict[tuple[int, int], str] = {(r, fm): row[fm - 1] for r, row in _ROWS.items()
                                    for fm in range(1, 6)}


class Population(Protocol):
    """Where a value stands among the live population of a metric."""

    def share_below(self, metric: str, value: float) -> float:
        """Share of the population strictly below ``value`` (0 when empty)."""
        ...

    def share_above(self, metric: str, value: float) -> float:
        """Share of the population strictly above ``value`` (0 when empty)."""
        ...

    def size(self, metric: str) -> int:
        ...


def standing(population: Population, metric: str, value: float) -> float:
    """Where ``value`` stands (0-1) among the values that differ from it; 0.5 when none do."""
    below, above = population.share_below(metric, value), population.share_above(metric, value)
    return 0.5 if below + above <= 0 else below / (below + above)


def quintile(share: float) -> int:
    return max(1, min(5, 1 + int(5 * share)))


@dataclass(frozen=True)
class RfmScore:
    r: int
    f: int
    m: int
    label: str


def segment(r: int, f: int, m: int) -> str:
    return GRID[(r, (f + m + 1) // 2)]


def rfm(last_day: int | None, purchase_days: int, total: float,
        population: Population) -> RfmScore:
    if last_day is None or purchase_days <= 0:
        return RfmScore(1, 1, 1, PROSPECT)
    r = quintile(standing(population, RECENCY, last_day))
    f = quintile(standing(population, FREQUENCY, purchase_days))
    m = quintile(standing(population, MONETARY, total))
    return RfmScore(r, f, m, segment(r, f, m))
