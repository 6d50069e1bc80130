"""The decision use case: read what is needed within the latency budget, decide, keep
the decision and log it. Degrades, never fails: a part that is slow or down gives way
to a documented fallback, and the decision's notes say which.

- the customer (profile and scores) not read in time: decided as for an unknown
  customer (no consents, so no marketing by email or SMS);
- the contact limits not answered in time: only offers that no limit or contact policy
  applies to (service messages, unlimited offers outside the rules' channels);
- the response model unreadable: the last one read, or the prior;
- the decision not kept or not logged: it is still answered (outcomes for it are then
  refused as unknown, and it is missing from the evaluations).
"""

from __future__ import annotations

import asyncio
import random
import uuid
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, Protocol, TypeVar

import numpy as np
import structlog
from prometheus_client import Counter, Histogram

from rapport.shared import facts
from rapport.shared.customers import CustomerReadModel
from rapport.shared.events import Channel, DecisionLogged, LoggedCandidate
from rapport.shared.privacy import Fingerprints

from . import consent, domain, holdouts
from .catalog import Catalog
from .features import customer_features
from .learner import ProbitModel
from .policies import DEFAULT, Policy, PolicyConfig, assign
from .suitability import SuitabilityRules

log = structlog.get_logger(__name__)
DECISIONS = Counter("rapport_decisions_total", "Decisions made", ["policy", "group"])
FALLBACKS = Counter("rapport_decision_fallbacks_total", "Fallbacks taken", ["part"])
STEP = Histogram("rapport_decision_step_seconds", "Time per decision step", ["step"],
                 buckets=(0.0005, 0.001, 0.002, 0.005, 0.01, 0.02, 0.05, 0.1))
T = TypeVar("T")


class Predictor(Protocol):
    version: int

    def predict(self, offer_ids: list[str], x: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        ...


class Parts(Protocol):
    """What a decision reads and writes, behind the store adapters."""

    async def catalog(self) -> Any: ...
    async def policies(self) -> PolicyConfig: ...
    async def model(self, learner: str) -> Predictor: ...
    async def spikes(self) -> frozenset[str]: ...
    async def uplift(self) -> Any: ...
    async def reserve(self, customer_id: str, offers: list[Any], limit: int, at: datetime, *,
                      channel: Channel, sms: bool, epsilon: float, u: float, r: float
                      ) -> Any: ...
    async def keep(self, decision: domain.Decision) -> None: ...
    async def log(self, record: DecisionLogged) -> None: ...


@dataclass(frozen=True)
class Ask:
    identifier: str
    channel: Channel
    placement: str | None
    context: dict[str, Any]
    limit: int


class Decider:
    def __init__(self, reader: CustomerReadModel, parts: Parts, fingerprints: Fingerprints,
                 rules: SuitabilityRules, *, customer_budget_s: float,
                 contacts_budget_s: float, rng: random.Random | None = None) -> None:
        self._reader = reader
        self._parts = parts
        self._fp = fingerprints
        self._rules = rules
        self._customer_budget = customer_budget_s
        self._contacts_budget = contacts_budget_s
        self._rng = rng or random.Random()

    async def decide(self, ask: Ask) -> domain.Decision:
        now = datetime.now(UTC)
        notes: list[str] = []
        req = await self._request(ask, now, notes)
        config = await self._or(self._parts.policies(), DEFAULT, "policies", notes,
                                "the policies could not be read: the default policy")
        policy = assign(config, req.customer_id)
        if policy is None:
            decision = domain.held_out(req, now, config.control_share)
            decision.features = customer_features(  # what the control arm teaches
                req.profile, req.scores, req.channel, req.context,
                personalised=req.personalised).tolist()
        else:
            decision = await self._treat(req, policy, now, notes)
        DECISIONS.labels(decision.policy_id, decision.group).inc()
        await self._finish(decision, req, notes)
        return decision

    async def _request(self, ask: Ask, now: datetime, notes: list[str]
                       ) -> domain.DecisionRequest:
        customer_id, profile, scores = ask.identifier, None, None
        found = await self._within(self._customer(ask.identifier, now),
                                   self._customer_budget, "customer", notes,
                                   "the customer could not be read in time: decided as for "
                                   "an unknown customer")
        if found is not None and found is not _MISSING:
            customer_id, profile, scores = found
        return domain.DecisionRequest(decision_id=uuid.uuid4().hex, customer_id=customer_id,
                                      channel=ask.channel, placement=ask.placement,
                                      limit=ask.limit, context=ask.context,
                                      profile=profile, scores=scores)

    async def _customer(self, identifier: str, now: datetime) -> Any:
        found = await self._reader.find(identifier)
        if found is None:
            return _MISSING
        scores = (await self._reader.scores(found, now)).model_dump(mode="json")
        return found.customer_id, facts.describe(found, now), scores

    async def _treat(self, req: domain.DecisionRequest, policy: Policy, now: datetime,
                     notes: list[str]) -> domain.Decision:
        catalog = await self._or(self._parts.catalog(), Catalog(offers=[]), "catalog", notes,
                                 "the catalog could not be read: no offer")
        x = customer_features(req.profile, req.scores, req.channel, req.context,
                              personalised=req.personalised)
        model = await self._or(self._parts.model(policy.learner), _PRIOR, "model", notes,
                               "the response model could not be read: the prior")
        ids = [o.offer_id for o in catalog.offers]
        means, spreads = model.predict(ids, x) if ids else (np.empty(0), np.empty(0))
        predictions = {o: (float(m), float(s)) for o, m, s in zip(ids, means, spreads,
                                                                  strict=True)}
        if not req.personalised:
            notes.append("no personalization consent (or unknown customer): ranked without "
                         "the profile, which served only eligibility and consent")
        p = domain.plan(catalog, req, predictions, now, policy=policy, rules=self._rules,
                        spikes=await self._or(self._parts.spikes(), frozenset(), "spikes",
                                              [], ""),
                        uplift=await self._uplift(policy, x, notes))
        u, r = self._rng.random(), self._rng.random()
        pool = max(0, req.limit - 1) + policy.explore_pool
        offers = [c.offer for c in p.ranked[:pool]]
        beyond = {c.offer.offer_id: "not_considered" for c in p.ranked[pool:]}
        held = await self._within(
            self._parts.reserve(req.customer_id, offers, req.limit, now, channel=req.channel,
                                sms=consent.is_sms(req.channel, req.placement, req.context),
                                epsilon=policy.epsilon, u=u, r=r),
            self._contacts_budget, "contacts", notes,
            "the contact limits could not be checked in time: only offers no limit or "
            "contact policy applies to")
        if held is None:
            safe = [c for c in p.ranked if not _limited(c.offer)]
            beyond = {c.offer.offer_id: "unchecked" for c in p.ranked if _limited(c.offer)}
            beyond.update({c.offer.offer_id: "not_considered" for c in safe[pool:]})
            verdicts, probs, explored = domain.choose_locally(
                domain.Plan(safe[:pool], p.trace), req.limit, policy.epsilon, u, r)
            why = {}
        else:
            verdicts, probs, explored = dict(held.verdicts), held.probabilities, held.explored
            why = held.reasons
        verdicts, probs = holdouts.withhold(p.ranked, {**verdicts, **beyond}, probs,
                                            policy.holdout_share, self._rng.random)
        if holdouts.HELD_OUT in verdicts.values():
            notes.append("an offer was held out at random (its holdout), to measure what "
                         "it changes")
        return domain.assemble(p, req, now, policy_id=policy.policy_id, verdicts=verdicts,
                               probabilities=probs, explored=explored,
                               features=x.tolist(), model_version=f"{policy.learner}-"
                                                                  f"{model.version}",
                               notes=notes, why=why)

    async def _uplift(self, policy: Policy, x: np.ndarray, notes: list[str]
                      ) -> Callable[[list[str]], dict[str, Any]] | None:
        """The uplift learner's estimates, for the offers the plan finds eligible (None
        under the acceptance objective, or when the learner cannot be read: then they
        are ranked on acceptance, and the notes say so)."""
        if policy.objective != "uplift":
            return None
        learner = await self._or(self._parts.uplift(), None, "uplift", notes,
                                 "the uplift model could not be read: ranked on acceptance")
        if learner is None:
            return None
        return lambda ids: {e.offer_id: e for e in learner.estimate(ids, x)} if ids else {}

    async def _finish(self, decision: domain.Decision, req: domain.DecisionRequest,
                      notes: list[str]) -> None:
        if decision.group == "control":
            decision.notes.extend(notes)
        try:
            await self._parts.keep(decision)
        except Exception as exc:  # answered anyway: outcomes for it will be refused
            FALLBACKS.labels("keep").inc()
            log.warning("decision_not_kept", error=type(exc).__name__)
            decision.notes.append("fallback: the decision could not be kept; its outcomes "
                                  "cannot be recorded")
        try:
            await self._parts.log(self.logged(decision, req))
        except Exception as exc:
            FALLBACKS.labels("log").inc()
            log.warning("decision_not_logged", error=type(exc).__name__)

    def logged(self, d: domain.Decision, req: domain.DecisionRequest) -> DecisionLogged:
        actions = {a.offer_id: a.action_id for a in d.actions}
        rfm = (req.scores or {}).get("rfm") or {}
        return DecisionLogged(
            decision_id=d.decision_id, decided_at=d.decided_at,
            customer=self._fp.profile(d.customer_id), policy_id=d.policy_id, group=d.group,
            channel=d.channel, placement=d.placement, model_version=d.model_version,
            segment=rfm.get("label"), tier=(req.scores or {}).get("value_tier"),
            limit=req.limit, personalised=d.personalised,
            features=None if d.features is None else tuple(d.features),
            clv_90d=((req.scores or {}).get("clv") or {}).get("expected_value_90d")
            if d.personalised else None,
            candidates=tuple(LoggedCandidate(
                offer_id=t.offer_id, value=t.value or 0.0, cost=t.cost or 0.0,
                propensity=t.propensity or 0.0, spread=t.spread or 0.0,
                priority=t.priority, probability=t.probability, made=t.made,
                allowed=t.allowed, held_out=t.verdict == holdouts.HELD_OUT,
                uplift=t.uplift, action_id=actions.get(t.offer_id))
                for t in d.trace if t.rank is not None and t.verdict != "not_considered"))

    async def _or(self, work: Awaitable[T], fallback: T, part: str, notes: list[str],
                  said: str) -> T:
        """``work``'s result, or ``fallback`` when it fails (never cached: it is read
        from a cache that survives Redis failing once it has been read once)."""
        try:
            return await work
        except Exception as exc:
            FALLBACKS.labels(part).inc()
            log.warning("decision_fallback", part=part, error=type(exc).__name__)
            if said:
                notes.append(f"fallback: {said}")
            return fallback

    async def _within(self, work: Awaitable[T], budget: float, part: str,
                      notes: list[str], said: str) -> T | None:
        try:
            with STEP.labels(part).time():
                return await asyncio.wait_for(work, budget)
        except Exception as exc:  # slow or down: the documented fallback
            FALLBACKS.labels(part).inc()
            log.warning("decision_fallback", part=part, error=type(exc).__name__)
            notes.append(f"fallback: {said}")
            return None


_MISSING = object()
_PRIOR = ProbitModel()


def _limited(offer: Any) -> bool:
    """Whether a limit, a budget or a contact policy could apply to the offer."""
    c = offer.contact
    return offer.marketing or getattr(offer, "budget", None) is not None or (
        c is not None and (c.max is not None or c.stop_after_accept
                           or c.pause_after_rejections is not None))
