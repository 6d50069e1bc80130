"""Arbitration: which eligible offer is worth most to the business right now.

Pure: given the catalog, the facts about the customer and the learnt response
rates, ``decide`` returns the ranked actions and a full trace of why.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from pydantic import BaseModel

from rapport.shared.events import Channel

from . import consent
from .catalog import Catalog, Offer
from .limits import Reservation

DEFAULT_PROPENSITY = 0.05


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


class Action(BaseModel):
    action_id: str
    offer_id: str
    name: str
    score: float
    propensity: float
    value: float
    cost: float
    reasons: list[str]


class TraceEntry(BaseModel):
    offer_id: str
    eligible: bool
    reasons: list[str]
    propensity: float | None = None
    expected_profit: float | None = None
    rank: int | None = None


class Decision(BaseModel):
    decision_id: str
    customer_id: str
    known_customer: bool
    channel: Channel
    placement: str | None
    decided_at: datetime
    actions: list[Action]
    trace: list[TraceEntry]
    scores: dict[str, Any] | None = None
    """The customer's scores the decision used (as the scores API gives them then)."""


def _eligibility(offer: Offer, req: DecisionRequest, facts: dict[str, Any],
                 at: datetime) -> list[str]:
    """Reasons the offer is not eligible (empty when it is)."""
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
    refused = consent.refusal(offer, req.channel, req.placement, req.context,
                              (req.profile or {}).get("consents") or {})
    if refused:
        failures.append(refused)
    failures.extend(f"condition failed: {c.describe()}" for c in offer.eligibility
                    if not c.holds(facts))
    return failures


def _candidates(catalog: Catalog, req: DecisionRequest, propensities: dict[str, float],
                decided_at: datetime, trace: list[TraceEntry],
                ) -> list[tuple[float, Offer, float, list[str]]]:
    """Eligible offers worth making, best first (the ineligible ones go to ``trace``)."""
    facts = {"profile": req.profile or {}, "scores": req.scores or {}, "context": req.context}
    candidates: list[tuple[float, Offer, float, list[str]]] = []
    for offer in catalog.offers:
        failures = _eligibility(offer, req, facts, decided_at)
        if failures:
            trace.append(TraceEntry(offer_id=offer.offer_id, eligible=False, reasons=failures))
            continue
        p = propensities.get(offer.offer_id, DEFAULT_PROPENSITY)
        expected = p * offer.value - offer.cost
        reasons = [f"expected profit {expected:.2f} = {p:.3f} x {offer.value:.2f}"
                   f" - {offer.cost:.2f}"]
        reasons.extend(f"eligible: {c.describe()}" for c in offer.eligibility)
        if expected <= 0:
            trace.append(TraceEntry(offer_id=offer.offer_id, eligible=True, propensity=p,
                                    expected_profit=round(expected, 4),
                                    reasons=[*reasons, "not made: expected profit not positive"]))
            continue
        candidates.append((expected, offer, p, reasons))
    candidates.sort(key=lambda c: (-c[0], c[1].offer_id))
    return candidates


def ranked(catalog: Catalog, req: DecisionRequest, propensities: dict[str, float],
           decided_at: datetime) -> list[Offer]:
    """The offers :func:`decide` would make, best first, before contact limits."""
    return [c[1] for c in _candidates(catalog, req, propensities, decided_at, [])]


def _held_back(verdict: str, offer: Offer, limit: int) -> str:
    c = offer.contact
    if verdict == "capped" and c is not None:
        return f"contact limit: already made {c.max} times in {c.days:g} days (any channel)"
    if verdict == "paused" and c is not None:
        return (f"paused: rejected {c.pause_after_rejections} times in the last "
                f"{c.pause_days:g} days")
    if verdict == "accepted":
        return "not made again: already accepted (on any channel)"
    return f"below the limit of {limit}"


def decide(catalog: Catalog, req: DecisionRequest, propensities: dict[str, float],
           decided_at: datetime, contacts: Reservation | None = None) -> Decision:
    """Rank and choose. ``contacts`` holds the contact limits' verdict per ranked offer
    (``made`` or why not, from :meth:`.contacts.ContactBook.reserve`); without it the
    first ``limit`` are made."""
    trace: list[TraceEntry] = []
    candidates = _candidates(catalog, req, propensities, decided_at, trace)
    actions = []
    for rank, (expected, offer, p, reasons) in enumerate(candidates, start=1):
        verdict = (contacts.verdicts.get(offer.offer_id, "not_chosen") if contacts is not None
                   else "made" if rank <= req.limit else "not_chosen")
        why = (contacts.reasons.get(offer.offer_id) if contacts is not None else None) or \
            _held_back(verdict, offer, req.limit)
        chosen = verdict == "made"
        trace.append(TraceEntry(offer_id=offer.offer_id, eligible=True, propensity=p,
                                expected_profit=round(expected, 4), rank=rank,
                                reasons=reasons if chosen else [
                                    *reasons, why]))
        if chosen:
            actions.append(Action(action_id=f"{req.decision_id}.{rank}", offer_id=offer.offer_id,
                                  name=offer.name, score=round(expected, 4),
                                  propensity=round(p, 6), value=offer.value, cost=offer.cost,
                                  reasons=reasons))
    return Decision(decision_id=req.decision_id, customer_id=req.customer_id,
                    known_customer=req.profile is not None, channel=req.channel,
                    placement=req.placement, decided_at=decided_at, actions=actions, trace=trace,
                    scores=req.scores)
