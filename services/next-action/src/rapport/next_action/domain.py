"""A decision, step by step: screen the catalog (eligibility, consent, suitability),
rank what is left on expected profit (:mod:`.arbitration`), let the contact limits and
the exploration choose (:mod:`.contacts`, :mod:`.exploration`), and say why for every
offer.

Pure: given the catalog, the facts about the customer, the response model's
predictions and the contact limits' verdicts, the decision and its full trace.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Literal

from pydantic import BaseModel

from rapport.shared.events import Channel

from . import consent, exploration
from .arbitration import Candidate, rank
from .catalog import Catalog, Offer
from .policies import DEFAULT, Policy
from .suitability import SuitabilityRules, refusals

DEFAULT_PROPENSITY = 0.05
RULES = SuitabilityRules()
Group = Literal["treatment", "control"]


@dataclass(frozen=True)
class DecisionRequest:
    decision_id: str
    customer_id: str
    channel: Channel
    placement: str | None
    limit: int
    context: dict[str, Any] = field(default_factory=dict)
    profile: dict[str, Any] | None = None
    scores: dict[str, Any] | None = None

    @property
    def personalised(self) -> bool:
        """Whether the ranking may use the profile (the personalization consent)."""
        return self.profile is not None and \
            (self.profile.get("consents") or {}).get("personalization") is True


class Action(BaseModel):
    action_id: str
    offer_id: str
    name: str
    score: float
    propensity: float
    probability: float
    value: float
    cost: float
    reasons: list[str]


class TraceEntry(BaseModel):
    offer_id: str
    eligible: bool
    reasons: list[str]
    value: float | None = None
    cost: float | None = None
    propensity: float | None = None
    spread: float | None = None
    priority: float = 1.0
    expected_profit: float | None = None
    score: float | None = None
    rank: int | None = None
    probability: float = 0.0
    """The chance this decision's policy had of making it (0 when never possible)."""
    made: bool = False
    allowed: bool = True
    """Whether the contact limits allowed it (``False``: capped, paused, over budget...)."""
    verdict: str | None = None
    """For a ranked offer: made, held_out (withheld by its random holdout), not_chosen,
    not_considered (ranked below the policy's pool), capped, paused, accepted, budget
    or rule:<name>."""
    uplift: float | None = None
    """The uplift learner's incremental margin for it (before cost), when it valued it."""


class Decision(BaseModel):
    decision_id: str
    customer_id: str
    known_customer: bool
    channel: Channel
    placement: str | None
    decided_at: datetime
    policy_id: str
    group: Group
    actions: list[Action]
    trace: list[TraceEntry]
    scores: dict[str, Any] | None = None
    """The customer's scores the decision used (as the scores API gives them then)."""
    personalised: bool = False
    features: list[float] | None = None
    """What the response models saw (a control decision's too: the uplift learner's
    no-offer arm learns from it)."""
    model_version: str | None = None
    notes: list[str] = []
    """Decision-wide remarks: control group, fallbacks taken, exploration."""


@dataclass(frozen=True)
class Plan:
    """Screened and ranked, before the contact limits and the exploration."""

    ranked: list[Candidate]
    trace: list[TraceEntry]


def _applicability(offer: Offer, req: DecisionRequest, at: datetime) -> list[str]:
    failures = []
    if not offer.active:
        failures.append("offer is inactive")
    if offer.valid_from is not None and at < offer.valid_from:
        failures.append(f"not valid before {offer.valid_from.isoformat()}")
    if offer.valid_until is not None and at >= offer.valid_until:
        failures.append(f"expired at {offer.valid_until.isoformat()}")
    if req.channel not in offer.channels:
        failures.append(f"not offered on channel '{req.channel}'")
    if offer.placements and req.placement not in offer.placements:
        failures.append(f"not offered in placement '{req.placement}'" if req.placement
                        else "offered only in placements " + ", ".join(offer.placements))
    return failures


def _eligibility(offer: Offer, req: DecisionRequest, facts: dict[str, Any],
                 at: datetime, rules: SuitabilityRules) -> list[str]:
    """Reasons the offer is not eligible (empty when it is). An offer that does not
    apply here (inactive, out of its dates, channel or placement) says only that: its
    consent and conditions are not looked at."""
    failures = _applicability(offer, req, at)
    if failures:
        return failures
    refused = consent.refusal(offer, req.channel, req.placement, req.context,
                              (req.profile or {}).get("consents") or {})
    if refused:
        failures.append(refused)
    failures.extend(f"condition failed: {c.describe()}" for c in offer.eligibility
                    if not c.holds(facts))
    failures.extend(refusals(offer, req.scores, rules))
    return failures


_INELIGIBLE: dict[tuple[str, tuple[str, ...]], TraceEntry] = {}


def _ineligible(offer_id: str, failures: tuple[str, ...]) -> TraceEntry:
    """The trace entry of an ineligible offer, shared by every decision that finds it
    ineligible for the same reasons (most offers, most of the time: built once)."""
    key = (offer_id, failures)
    entry = _INELIGIBLE.get(key)
    if entry is None:
        if len(_INELIGIBLE) > 50_000:
            _INELIGIBLE.clear()
        entry = _INELIGIBLE[key] = TraceEntry(offer_id=offer_id, eligible=False,
                                              reasons=list(failures))
    return entry


def _prediction(value: float | tuple[float, float] | None) -> tuple[float, float]:
    if value is None:
        return DEFAULT_PROPENSITY, 0.0
    return (float(value), 0.0) if isinstance(value, int | float) else value


def plan(catalog: Catalog, req: DecisionRequest,
         predictions: Mapping[str, float | tuple[float, float]], at: datetime, *,
         policy: Policy = DEFAULT.policies[0], rules: SuitabilityRules = RULES,
         spikes: Iterable[str] = (),
         uplift: Callable[[list[str]], Mapping[str, Any]] | None = None) -> Plan:
    """``uplift``: the uplift learner's estimates of the eligible marketing offers given
    their ids (None: ranked on acceptance)."""
    facts = {"profile": req.profile or {}, "scores": req.scores or {}, "context": req.context}
    trace: list[TraceEntry] = []
    eligible: list[Offer] = []
    for offer in catalog.offers:
        failures = _eligibility(offer, req, facts, at, rules)
        if failures:
            trace.append(_ineligible(offer.offer_id, tuple(failures)))
        else:
            eligible.append(offer)
    scores = (req.scores or {}) if req.personalised else {}
    ranked, unworthy = rank(eligible, {o.offer_id: _prediction(predictions.get(o.offer_id))
                                       for o in eligible}, policy,
                            tier=scores.get("value_tier"), context=req.context, spikes=spikes,
                            clv_90d=(scores.get("clv") or {}).get("expected_value_90d"),
                            uplift=None if uplift is None else uplift(
                                [o.offer_id for o in eligible if o.marketing]))
    trace.extend(TraceEntry(
        offer_id=u.offer.offer_id, eligible=True, reasons=[u.reason],
                            value=u.offer.value, cost=u.offer.cost,
                            propensity=round(u.propensity, 6),
                            expected_profit=round(u.expected_profit, 4),
                            uplift=None if u.uplift is None else round(u.uplift, 4))
                 for u in unworthy)
    return Plan(ranked, trace)


def held_back(verdict: str, offer: Offer, limit: int) -> str:
    c = offer.contact
    if verdict == "capped" and c is not None:
        return f"contact limit: already made {c.max} times in {c.days:g} days (any channel)"
    if verdict == "paused" and c is not None:
        return (f"paused: rejected {c.pause_after_rejections} times in the last "
                f"{c.pause_days:g} days")
    if verdict == "accepted":
        return "not made again: already accepted (on any channel)"
    if verdict.startswith("rule:"):
        return f"contact policy '{verdict[5:]}': its limit is reached (any offer)"
    if verdict == "budget":
        return "daily budget: spent for now (paced through the day)"
    if verdict == "held_out":
        return ("held out: it would have been made, and was withheld at random (the "
                "offer's holdout) to measure what it changes")
    if verdict == "unchecked":
        return "not made: its contact limits could not be checked in time (fallback)"
    if verdict == "not_considered":
        return "not made: ranked below the candidates this policy considers"
    return f"not made: others ranked higher (limit {limit})"


def assemble(p: Plan, req: DecisionRequest, at: datetime, *, policy_id: str,
             verdicts: Mapping[str, str], probabilities: Mapping[str, float],
             explored: bool = False, features: Sequence[float] | None = None,
             model_version: str | None = None, notes: Sequence[str] = (),
             why: Mapping[str, str] | None = None) -> Decision:
    """The decision from the plan and the verdict on each ranked candidate (``made`` or
    why not) with the chance each had of being made."""
    actions, trace = [], list(p.trace)
    for position, c in enumerate(p.ranked, start=1):
        verdict = verdicts.get(c.offer.offer_id, "not_chosen")
        made = verdict == "made"
        probability = probabilities.get(c.offer.offer_id, 0.0)
        reasons = list(c.reasons)
        if made and 0 < probability < 1:
            reasons.append(f"chosen with probability {probability:.3f}"
                           + (" (exploring)" if explored and position > 1 else ""))
        entry = TraceEntry(offer_id=c.offer.offer_id, eligible=True,
                           reasons=reasons if made else [
                               *reasons, (why or {}).get(c.offer.offer_id)
                               or held_back(verdict, c.offer, req.limit)],
                           value=c.offer.value, cost=c.offer.cost,
                           propensity=round(c.propensity, 6), spread=round(c.spread, 6),
                           priority=c.offer.priority,
                           expected_profit=round(c.expected_profit, 4),
                           score=round(c.score, 4), rank=position,
                           probability=round(probability, 6), made=made,
                           allowed=verdict in ("made", "not_chosen", "held_out"),
                           verdict=verdict, uplift=None if c.uplift is None
                           else round(c.uplift, 4))
        trace.append(entry)
        if made:
            actions.append(Action(
                action_id=f"{req.decision_id}.{position}", offer_id=c.offer.offer_id,
                name=c.offer.name, score=round(c.score, 4), propensity=round(c.propensity, 6),
                probability=round(probability, 6), value=c.offer.value, cost=c.offer.cost,
                reasons=reasons))
    return Decision(decision_id=req.decision_id, customer_id=req.customer_id,
                    known_customer=req.profile is not None, channel=req.channel,
                    placement=req.placement, decided_at=at, policy_id=policy_id,
                    group="treatment", actions=actions, trace=trace, scores=req.scores,
                    personalised=req.personalised,
                    features=None if features is None else list(features),
                    model_version=model_version, notes=list(notes))


def held_out(req: DecisionRequest, at: datetime, control_share: float) -> Decision:
    """A control decision: nothing is made; it is logged so outcomes can be compared."""
    return Decision(decision_id=req.decision_id, customer_id=req.customer_id,
                    known_customer=req.profile is not None, channel=req.channel,
                    placement=req.placement, decided_at=at, policy_id="control",
                    group="control", actions=[], trace=[], scores=req.scores,
                    personalised=req.personalised,
                    notes=[f"control group ({control_share:.1%} of customers, stable per "
                           f"customer): no action is made, to measure what actions change"])


def choose_locally(p: Plan, limit: int, epsilon: float, u: float, r: float,
                   ) -> tuple[dict[str, str], dict[str, float], bool]:
    """Verdicts and chances without contact limits (every ranked candidate allowed)."""
    choice = exploration.choose(len(p.ranked), limit, epsilon, u, r)
    made = set(choice.made)
    verdicts = {c.offer.offer_id: "made" if i in made else "not_chosen"
                for i, c in enumerate(p.ranked)}
    probs = {c.offer.offer_id: choice.probabilities[i] for i, c in enumerate(p.ranked)}
    return verdicts, probs, choice.explored


def decide(catalog: Catalog, req: DecisionRequest,
           predictions: Mapping[str, float | tuple[float, float]], decided_at: datetime, *,
           policy: Policy | None = None, rules: SuitabilityRules = RULES,
           u: float = 1.0, r: float = 0.0) -> Decision:
    """The whole decision without contact limits (the service adds them between the
    plan and the assembly); deterministic unless ``u`` < the policy's epsilon."""
    policy = policy or DEFAULT.policies[0].model_copy(update={"epsilon": 0.0})
    p = plan(catalog, req, predictions, decided_at, policy=policy, rules=rules)
    verdicts, probs, explored = choose_locally(p, req.limit, policy.epsilon, u, r)
    return assemble(p, req, decided_at, policy_id=policy.policy_id, verdicts=verdicts,
                    probabilities=probs, explored=explored)
