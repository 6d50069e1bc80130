"""What a policy would have done on a logged decision: its chance of making each of the
logged candidates, for off-policy evaluation. The logged candidates are re-ranked by
the policy's own optimism, business-priority weight, tier and CLV weights, exactly as
:mod:`.arbitration` ranks them live; its context weights and spike boosts are not
replayed (the log does not keep the request's context). Pure.
"""

from __future__ import annotations

from rapport.shared.events import DecisionLogged, LoggedCandidate

from . import exploration
from .policies import Policy


def _score(c: LoggedCandidate, policy: Policy, d: DecisionLogged) -> float:
    upper = min(1.0, c.propensity + policy.optimism * c.spread)
    optimistic = upper * c.value - c.cost
    if optimistic <= 0:
        return 0.0
    weight = c.priority ** policy.priority_weight if policy.priority_weight else 1.0
    if d.tier is not None and d.personalised:
        weight *= policy.tier_weights.get(d.tier, 1.0)  # type: ignore[call-overload]
    if policy.clv_weight and d.clv_90d is not None and d.clv_90d > 0:
        weight *= 1 + policy.clv_weight * min(1.0, d.clv_90d / policy.clv_reference)
    return optimistic * weight


def policy_probabilities(policy: Policy, d: DecisionLogged) -> list[float]:
    """Per logged candidate, the chance ``policy`` makes it: ranked as it ranks, cut to
    its pool, then the ones the contact limits allowed (0 for the rest)."""
    scored = [(i, _score(c, policy, d)) for i, c in enumerate(d.candidates)]
    ranked = sorted(((i, s) for i, s in scored if s > 0),
                    key=lambda t: (-t[1], d.candidates[t[0]].offer_id))
    pool = max(0, d.limit - 1) + policy.explore_pool
    worth = [(i, s) for i, s in ranked[:pool] if d.candidates[i].allowed]
    probs = exploration.probabilities(len(worth), d.limit, policy.epsilon)
    out = [0.0] * len(d.candidates)
    for (i, _), p in zip(worth, probs, strict=True):
        out[i] = p
    return out
