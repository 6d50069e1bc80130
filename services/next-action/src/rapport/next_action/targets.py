"""What a policy would have done on a logged decision: its chance of making each of the
logged candidates, for off-policy evaluation. The logged candidates are re-ranked by
the policy's own optimism, business-priority weight and tier weights, exactly as
:mod:`.arbitration` ranks them live; its context weights and spike boosts are not
replayed (the log does not keep the request's context). Pure.
"""

from __future__ import annotations

from rapport.shared.events import DecisionLogged, LoggedCandidate

from . import exploration
from .policies import Policy


def _score(c: LoggedCandidate, policy: Policy, tier: str | None) -> float:
    upper = min(1.0, c.propensity + policy.optimism * c.spread)
    optimistic = upper * c.value - c.cost
    if optimistic <= 0:
        return 0.0
    weight = c.priority ** policy.priority_weight if policy.priority_weight else 1.0
    if tier is not None:
        weight *= policy.tier_weights.get(tier, 1.0)  # type: ignore[call-overload]
    return optimistic * weight


def policy_probabilities(policy: Policy, d: DecisionLogged) -> list[float]:
    """Per logged candidate, the chance ``policy`` makes it (0 for those the contact
    limits did not allow, or not worth making)."""
    scored = [(i, _score(c, policy, d.tier)) for i, c in enumerate(d.candidates) if c.allowed]
    worth = sorted(((i, s) for i, s in scored if s > 0),
                   key=lambda t: (-t[1], d.candidates[t[0]].offer_id))
    probs = exploration.probabilities(len(worth), d.limit, policy.epsilon)
    out = [0.0] * len(d.candidates)
    for (i, _), p in zip(worth, probs, strict=True):
        out[i] = p
    return out
