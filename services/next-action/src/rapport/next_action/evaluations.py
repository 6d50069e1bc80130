"""``POST /v1/evaluations``: what another policy would have earned per decision, from
the decision log (Kafka) and the outcomes heard since (Redis), by the estimators of
:mod:`.ope`.

Control decisions made nothing and are left out (no policy's action was ever tried
on them). A made action with no final outcome yet counts as not accepted; how many
there are is reported as ``pending``. Only candidates the contact limits allowed are
candidates: what was capped could not have been made by any policy.
"""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from datetime import datetime
from typing import Any

from aiokafka import AIOKafkaConsumer, TopicPartition
from pydantic import AwareDatetime, BaseModel, ConfigDict, Field, model_validator

from rapport.shared import topics
from rapport.shared.events import DecisionLogged

from . import ope
from .learning_store import LearningStore
from .policies import PolicyConfig
from .targets import policy_probabilities

MAX_DECISIONS = 500_000


class Target(BaseModel):
    model_config = ConfigDict(extra="forbid")

    policy_id: str | None = None
    fixed_offer: str | None = None
    random: bool | None = None

    @model_validator(mode="after")
    def _one(self) -> Target:
        given = [self.policy_id is not None, self.fixed_offer is not None, bool(self.random)]
        if sum(given) != 1:
            raise ValueError('give exactly one of {"policy_id": ...}, {"fixed_offer": ...} '
                             'or {"random": true}')
        return self


class EvaluationRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")

    policy: Target
    since: AwareDatetime | None = None
    until: AwareDatetime | None = None
    max_decisions: int = Field(default=MAX_DECISIONS, ge=1, le=MAX_DECISIONS)


class Unsupported(ValueError):
    """The target makes what the logged decisions never could have (no support)."""


async def read_log(bootstrap: str, since: datetime | None, until: datetime | None,
                   limit: int) -> list[DecisionLogged]:
    """The logged decisions decided in [since, until), oldest partitions' first."""
    consumer = AIOKafkaConsumer(bootstrap_servers=bootstrap, enable_auto_commit=False,
                                client_id="rapport-next-action-evaluation")
    await consumer.start()
    try:
        parts = [TopicPartition(topics.DECISIONS.name, p)
                 for p in range(topics.DECISIONS.partitions)]
        consumer.assign(parts)
        ends = await consumer.end_offsets(parts)
        starts = await consumer.beginning_offsets(parts)
        if since is not None:
            found = await consumer.offsets_for_times(
                {tp: int(since.timestamp() * 1000) for tp in parts})
            starts = {tp: (ends[tp] if found[tp] is None else found[tp].offset) for tp in parts}
        out: list[DecisionLogged] = []
        for tp in parts:
            if starts[tp] < ends[tp]:
                consumer.seek(tp, starts[tp])
        todo = {tp for tp in parts if starts[tp] < ends[tp]}
        while todo and len(out) < limit:
            batches = await consumer.getmany(*todo, timeout_ms=1000, max_records=5000)
            for tp, records in batches.items():
                for record in records:
                    if record.offset >= ends[tp]:
                        break
                    d = DecisionLogged.from_bytes(record.value)
                    if (since is None or d.decided_at >= since) and \
                            (until is None or d.decided_at < until):
                        out.append(d)
            for tp in list(todo):
                if await consumer.position(tp) >= ends[tp]:
                    todo.discard(tp)
        return out[:limit]
    finally:
        await consumer.stop()


def _allowed(d: DecisionLogged) -> DecisionLogged:
    return d.model_copy(update={"candidates": tuple(c for c in d.candidates if c.allowed)})


def as_ope(logged: Sequence[DecisionLogged], outcomes: Sequence[dict[str, str]]
           ) -> tuple[list[ope.LoggedDecision], int]:
    decisions, pending = [], 0
    for d, heard in zip(logged, outcomes, strict=True):
        cands = []
        for c in d.candidates:
            said = heard.get(c.action_id or "") if c.made else None
            pending += int(c.made and said is None)
            cands.append(ope.Candidate(offer_id=c.offer_id, value=c.value, cost=c.cost,
                                       propensity=c.propensity, probability=c.probability,
                                       made=c.made, accepted=said == "accepted"))
        decisions.append(ope.LoggedDecision(d.decision_id, tuple(cands)))
    return decisions, pending


def targets(target: Target, logged: Sequence[DecisionLogged],
            decisions: Sequence[ope.LoggedDecision], config: PolicyConfig) -> list[list[float]]:
    if target.fixed_offer is not None:
        return ope.fixed_offer(decisions, target.fixed_offer)
    if target.random:
        return ope.uniform_random(decisions)
    policy = config.policy(target.policy_id or "")
    if policy is None:
        raise LookupError(f"no policy '{target.policy_id}' (see GET /v1/policies)")
    return [policy_probabilities(policy, d) for d in logged]


def estimate(decisions: list[ope.LoggedDecision], target: list[list[float]]
             ) -> dict[str, Any]:
    def one(e: ope.Estimate) -> dict[str, Any]:
        return {"value": round(e.value, 6), "ci95": [round(e.ci95[0], 6), round(e.ci95[1], 6)]}
    try:
        return {"ips": one(ope.InverseProbabilityWeighting().estimate(decisions, target)),
                "snips": one(ope.SelfNormalizedIPW().estimate(decisions, target)),
                "dr": one(ope.DoublyRobust().estimate(decisions, target))}
    except ValueError as exc:
        raise Unsupported(str(exc)) from exc


async def evaluate(req: EvaluationRequest, bootstrap: str, learning: LearningStore,
                   config: PolicyConfig) -> dict[str, Any]:
    logged = [_allowed(d) for d in await read_log(bootstrap, req.since, req.until,
                                                  req.max_decisions)
              if d.group == "treatment"]
    if not logged:
        raise LookupError("no logged decisions in that period")
    outcomes = await learning.outcomes_of([d.decision_id for d in logged])
    decisions, pending = as_ope(logged, outcomes)
    target = targets(req.policy, logged, decisions, config)
    estimates = await asyncio.to_thread(estimate, decisions, target)
    value = ope.logged_value(decisions)
    return {"decisions": len(decisions), "pending": pending,
            "policy": req.policy.model_dump(exclude_none=True), "estimates": estimates,
            "logged": {"value": round(value.value, 6),
                       "ci95": [round(value.ci95[0], 6), round(value.ci95[1], 6)]}}
