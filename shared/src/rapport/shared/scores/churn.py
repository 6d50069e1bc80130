"""Churn risk: the model's probability of no purchase in the horizon, shifted by the
signals that precede leaving. (Placeholder until the fitted version lands.)"""

from __future__ import annotations

import math
from dataclasses import dataclass


@dataclass(frozen=True)
class ChurnSignals:
    complaints: int = 0
    refunds: int = 0
    unresolved_calls: int = 0
    tickets: int = 0
    falling_frequency: float = 0.0


@dataclass(frozen=True)
class ChurnWeights:
    complaint: float = 0.6
    refund: float = 0.4
    unresolved_call: float = 0.5
    ticket: float = 0.2
    falling_frequency: float = 1.0


def churn_risk(base: float, signals: ChurnSignals,
               weights: ChurnWeights = ChurnWeights()) -> tuple[float, list[str]]:
    base = min(1 - 1e-9, max(1e-9, base))
    shift = (weights.complaint * signals.complaints + weights.refund * signals.refunds
             + weights.unresolved_call * signals.unresolved_calls
             + weights.ticket * signals.tickets
             + weights.falling_frequency * signals.falling_frequency)
    risk = 1 / (1 + math.exp(-(math.log(base / (1 - base)) + shift)))
    return risk, [f"no purchase expected in the horizon (p={base:.2f})"]
