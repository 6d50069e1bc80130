"""Exploration with exact probabilities: which of the ranked, allowed candidates a
decision makes, and the chance it had of making each.

The first ``limit - 1`` slots go to the best candidates. The last slot goes to the next
best, except in a share ``epsilon`` of decisions, where it goes to one candidate drawn
uniformly from the rest (the next best included). Every allowed candidate therefore
has a known, non-zero chance of being made, which is what off-policy evaluation needs;
what to explore is steered by the ranking itself (its optimism for the uncertain),
so ``epsilon`` can stay small.

Pure: the two uniform draws ``u`` (explore or not) and ``r`` (which one) are inputs,
so the same draws give the same choice in Python and in the contact-limit script.
"""

from __future__ import annotations

import math
from dataclasses import dataclass


@dataclass(frozen=True)
class Choice:
    made: tuple[int, ...]
    """Indices (into the ranked candidates) of those made, in the order shown."""
    probabilities: tuple[float, ...]
    """Per ranked candidate, the chance of being made at any rank."""
    explored: bool


def slots(n: int, limit: int) -> int:
    return max(0, min(limit, n))


def probabilities(n: int, limit: int, epsilon: float) -> tuple[float, ...]:
    """The chance each of ``n`` ranked candidates is made."""
    k = slots(n, limit)
    if k == 0:
        return (0.0,) * n
    pool = n - k + 1
    if pool == 1 or epsilon <= 0:
        return tuple(1.0 if i < k else 0.0 for i in range(n))
    share = epsilon / pool
    return tuple(1.0 if i < k - 1 else (1 - epsilon + share if i == k - 1 else share)
                 for i in range(n))


def choose(n: int, limit: int, epsilon: float, u: float, r: float) -> Choice:
    """The candidates made among ``n`` ranked ones, with ``u``, ``r`` uniform in [0, 1)."""
    if not (0.0 <= epsilon <= 1.0):
        raise ValueError("epsilon must be within [0, 1]")
    k = slots(n, limit)
    probs = probabilities(n, limit, epsilon)
    if k == 0:
        return Choice((), probs, False)
    pool = n - k + 1
    explored = pool > 1 and u < epsilon
    last = k - 1 + (min(pool - 1, math.floor(r * pool)) if explored else 0)
    return Choice((*range(k - 1), last), probs, explored)
