"""Offer response rates learnt from outcomes (customer scores live in
:mod:`rapport.shared.scores`, computed when asked by every service alike)."""

from __future__ import annotations

import math


def propensity(accepted: int, decided: int, prior_rate: float = 0.05,
               prior_weight: float = 20.0) -> float:
    """Posterior mean acceptance rate under a Beta prior (shrinks small samples)."""
    alpha = prior_rate * prior_weight + accepted
    beta = (1 - prior_rate) * prior_weight + max(0, decided - accepted)
    value = alpha / (alpha + beta)
    return value if math.isfinite(value) else prior_rate
