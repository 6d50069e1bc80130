"""Arbitration: rank the eligible offers on expected profit, with the policy's levers.

For each offer the response model gives a propensity (the predicted chance this
customer accepts here) and its uncertainty. Then:

- expected profit = propensity x value - cost;
- the ranking score = (optimistic propensity x value - cost) x levers, where the
  optimistic propensity is propensity + ``optimism`` x its standard deviation (so what
  is little known about gets tried, and stops being tried as it becomes known) and the
  levers multiply: the offer's business ``priority`` (to the policy's
  ``priority_weight``), the policy's weight for the customer's value tier and for their
  expected value over 90 days (``clv_weight``), its context
  weights matching the request's context, and ``spike_boost`` when the offer's category
  has an active demand spike;
- an offer whose optimistic expected profit is not positive is not made (making
  nothing is worth 0).

Under the ``uplift`` objective a marketing offer is valued by what it changes instead:
incremental profit = P(buy | offer) x margin with it - P(buy | no offer) x margin
without it - cost (the uplift learner's estimate, :mod:`.uplift`), ranked at that +
``optimism`` x its standard deviation; "do nothing" is worth 0, so an offer that does
not pay for itself (a discount to someone who buys anyway) is not made. Service
messages keep the acceptance value.

Pure: no I/O, no clock.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from .catalog import Offer
from .policies import Policy


@dataclass(frozen=True)
class Candidate:
    offer: Offer
    propensity: float
    spread: float
    expected_profit: float
    score: float
    reasons: tuple[str, ...] = field(default_factory=tuple)
    uplift: float | None = None
    """The uplift learner's incremental margin (before cost), when it valued the offer."""


@dataclass(frozen=True)
class Unworthy:
    offer: Offer
    propensity: float
    expected_profit: float
    reason: str
    uplift: float | None = None


def levers(offer: Offer, policy: Policy, tier: str | None, context: Mapping[str, Any],
           spikes: frozenset[str], clv_90d: float | None = None) -> tuple[float, list[str]]:
    """The product of the multipliers that apply, and each in words."""
    weight, said = 1.0, []
    if offer.priority != 1.0 and policy.priority_weight:
        w = offer.priority ** policy.priority_weight
        weight *= w
        said.append(f"business priority {offer.priority:g} (x{w:.2f})")
    if tier is not None and tier in policy.tier_weights:
        w = policy.tier_weights[tier]  # type: ignore[index]
        weight *= w
        said.append(f"{tier}-tier customer (x{w:g})")
    if policy.clv_weight and clv_90d is not None and clv_90d > 0:
        w = 1 + policy.clv_weight * min(1.0, clv_90d / policy.clv_reference)
        weight *= w
        said.append(f"customer worth {clv_90d:.0f} over 90 days (x{w:.2f})")
    for key, value in context.items():
        for name in (f"{key}={value}", f"{key}={value}@{offer.offer_id}"):
            if name in policy.context_weights:
                w = policy.context_weights[name]
                weight *= w
                said.append(f"context {name.split('@')[0]} (x{w:g})")
    if offer.category is not None and offer.category in spikes and policy.spike_boost != 1.0:
        weight *= policy.spike_boost
        said.append(f"demand spike in {offer.category} (x{policy.spike_boost:g})")
    return weight, said


def rank(offers: Sequence[Offer], predictions: Mapping[str, tuple[float, float]],
         policy: Policy, *, tier: str | None, context: Mapping[str, Any],
         spikes: Iterable[str] = (), clv_90d: float | None = None,
         uplift: Mapping[str, Any] | None = None,
         ) -> tuple[list[Candidate], list[Unworthy]]:
    """The offers worth making, best first (ties by offer id), and those that are not."""
    hot = frozenset(spikes)
    worth: list[Candidate] = []
    unworthy: list[Unworthy] = []
    for offer in offers:
        p, sd = predictions[offer.offer_id]
        estimate = (uplift or {}).get(offer.offer_id) if offer.marketing else None
        if estimate is not None:
            made = _incremental(offer, p, sd, estimate, policy)
            if isinstance(made, Unworthy):
                unworthy.append(made)
                continue
            weight, said = levers(offer, policy, tier, context, hot, clv_90d)
            worth.append(Candidate(offer, p, sd, made.expected_profit, made.score * weight,
                                   (*made.reasons, *said), estimate.incremental_margin))
            continue
        expected = p * offer.value - offer.cost
        upper = min(1.0, p + policy.optimism * sd)
        optimistic = upper * offer.value - offer.cost
        if optimistic <= 0:
            unworthy.append(Unworthy(offer, p, expected, (
                f"not made: expected profit {expected:.2f} = {p:.3f} x {offer.value:.2f} - "
                f"{offer.cost:.2f} is not positive, even at an optimistic {upper:.3f}")))
            continue
        weight, said = levers(offer, policy, tier, context, hot, clv_90d)
        reasons = [f"expected profit {expected:.2f} = {p:.3f} x {offer.value:.2f} - "
                   f"{offer.cost:.2f}"]
        if upper > p:
            reasons.append(f"ranked at an optimistic {upper:.3f} (uncertainty "
                           f"{sd:.3f} x {policy.optimism:g})")
        reasons.extend(said)
        worth.append(Candidate(offer, p, sd, expected, optimistic * weight, tuple(reasons)))
    worth.sort(key=lambda c: (-c.score, c.offer.offer_id))
    return worth, unworthy


def _incremental(offer: Offer, p: float, spread: float, e: Any, policy: Policy
                 ) -> Candidate | Unworthy:
    """An offer valued by its uplift estimate ``e`` (:class:`.uplift.UpliftEstimate`),
    shrunk toward the catalog's own belief (propensity x value: what an accepted offer
    brings) while few of its windows have closed: weight n / (n + uplift_prior_windows)
    on what was learnt. A new offer starts ranked as on acceptance and is then judged by
    what it changes."""
    w = e.n_with / (e.n_with + policy.uplift_prior_windows) \
        if policy.uplift_prior_windows else 1.0
    learnt = w * e.incremental_margin + (1 - w) * p * offer.value
    gain = learnt - offer.cost
    sd = math.sqrt((w * e.sd) ** 2 + ((1 - w) * spread * offer.value) ** 2)
    # each part at its own optimism: an offer with no window ranks as on acceptance
    optimistic = gain + (1 - w) * policy.optimism * spread * offer.value \
        + w * policy.uplift_optimism * e.sd
    said = (f"incremental profit {gain:.2f} = {e.margin_with:.2f} expected with it "
            f"(buys {e.p_with:.3f}) - {e.margin_without:.2f} without "
            f"(buys {e.p_without:.3f}) - {offer.cost:.2f} cost")
    if w < 1:
        said += (f" (learnt from {e.n_with} windows with it, weight {w:.2f}; the rest "
                 f"{p:.3f} x {offer.value:.2f} from acceptance)")
    if optimistic <= 0:
        why = ("it would go to someone who buys anyway" if e.p_without >= e.p_with - 0.01
               and e.p_without > 0.05 else "it does not pay for itself")
        return Unworthy(offer, p, gain, f"not made: {said}; not positive even at an "
                                        f"optimistic {optimistic:.2f}: {why}",
                        e.incremental_margin)
    reasons = [said]
    if optimistic > gain:
        reasons.append(f"ranked at an optimistic {optimistic:.2f} (uncertainty {sd:.2f})")
    return Candidate(offer, p, spread, gain, optimistic, tuple(reasons), e.incremental_margin)
