"""HTTP: decisions, outcomes and the offer catalog."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Annotated, Any, Literal

import orjson
from aiokafka import AIOKafkaProducer
from fastapi import APIRouter, Body, Depends, Request
from fastapi.responses import JSONResponse, Response
from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from rapport.shared import topics
from rapport.shared.auth import Role, require
from rapport.shared.customers import CustomerReadModel
from rapport.shared.events import Channel, OfferOutcome, OutcomeKind
from rapport.shared.moments import parse_as_of
from rapport.shared.service import ApiError

from . import reports, uplift_report
from .attribution import ANY
from .catalog import Catalog, Offer
from .contacts import ContactBook
from .deciding import Ask, Decider
from .domain import Decision
from .evaluations import EvaluationRequest, Unsupported, evaluate
from .learning_store import LearningStore
from .policies import PolicyConfig
from .store import NextActionStore
from .uplift_store import UpliftStore

router = APIRouter(prefix="/v1", tags=["next-best-action"])
ChannelRole = Annotated[Role, Depends(require(Role.CHANNEL))]
AgentRole = Annotated[Role, Depends(require(Role.AGENT))]
AdminRole = Annotated[Role, Depends(require(Role.ADMIN))]
OpsRole = Annotated[Role, Depends(require(Role.OPS))]


async def _store(request: Request) -> NextActionStore:
    return request.app.state.store


async def _reader(request: Request) -> CustomerReadModel:
    return request.app.state.reader


async def _decider(request: Request) -> Decider:
    return request.app.state.decider


async def _learning(request: Request) -> LearningStore:
    return request.app.state.learning


async def _uplift(request: Request) -> UpliftStore:
    return request.app.state.uplift


Store = Annotated[NextActionStore, Depends(_store)]
Uplift = Annotated[UpliftStore, Depends(_uplift)]
Learning = Annotated[LearningStore, Depends(_learning)]
DeciderDep = Annotated[Decider, Depends(_decider)]
Reader = Annotated[CustomerReadModel, Depends(_reader)]


class NbaRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")

    customer_id: str | None = Field(default=None, min_length=1, max_length=256)
    anonymous_id: str | None = Field(default=None, min_length=1, max_length=256)
    channel: Channel
    placement: str | None = Field(default=None, max_length=100)
    context: dict[str, Any] = Field(default_factory=dict)
    limit: int = Field(default=3, ge=1, le=50)

    @model_validator(mode="after")
    def _one_identity(self) -> NbaRequest:
        if not (self.customer_id or self.anonymous_id):
            raise ValueError("customer_id or anonymous_id is required")
        return self


class NbaAction(BaseModel):
    action_id: str
    offer_id: str
    name: str
    score: float
    propensity: float
    probability: float
    value: float
    reasons: list[str]


class NbaResponse(BaseModel):
    decision_id: str
    customer_id: str
    policy_id: str
    group: Literal["treatment", "control"]
    actions: list[NbaAction]


class OutcomeRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")

    decision_id: str = Field(min_length=1, max_length=100)
    action_id: str = Field(min_length=1, max_length=200)
    outcome: OutcomeKind


@router.get("/offers", summary="The offer catalog", response_model=list[Offer])
async def get_offers(store: Store, _: AdminRole) -> Any:
    return (await store.catalog()).offers


@router.put("/offers", summary="Replace the offer catalog (refused whole when invalid)",
            responses={422: {"description": "invalid catalog; the old one stays"}})
async def put_offers(store: Store, _: AdminRole,
                     offers: Annotated[Any, Body(description="JSON list of offers")]) -> Any:
    if not isinstance(offers, list):
        raise ApiError(422, "the catalog must be a JSON list of offers")
    try:
        catalog = Catalog(offers=offers)
    except ValidationError as exc:
        raise _refused("catalog", exc) from exc
    stored = await store.replace_catalog(catalog)
    return {"offers": len(stored.offers), "version": stored.version}


@router.post("/next-best-action", response_model=NbaResponse, summary="Decide what to offer")
async def next_best_action(body: NbaRequest, _: ChannelRole, decider: DeciderDep) -> Any:
    identifier = body.customer_id or body.anonymous_id
    assert identifier is not None
    d = await decider.decide(Ask(identifier=identifier, channel=body.channel,
                                 placement=body.placement, context=body.context,
                                 limit=body.limit))
    # Answered as built: the decision's trace stays out of the response (GET shows it).
    return Response(orjson.dumps({
        "decision_id": d.decision_id, "customer_id": d.customer_id,
        "policy_id": d.policy_id, "group": d.group,
        "actions": [{"action_id": a.action_id, "offer_id": a.offer_id, "name": a.name,
                     "score": a.score, "propensity": a.propensity,
                     "probability": a.probability, "value": a.value,
                     "reasons": a.reasons} for a in d.actions]}),
        media_type="application/json")


@router.post("/outcomes", status_code=202, summary="Report what the customer did",
             responses={404: {"description": "unknown decision"},
                        422: {"description": "action not part of the decision"}})
async def outcomes(body: OutcomeRequest, request: Request, store: Store,
                   _: ChannelRole) -> JSONResponse:
    decision = await store.decision(body.decision_id)
    if decision is None:
        raise ApiError(404, "no decision with this id (unknown or expired)")
    action = next((a for a in decision.actions if a.action_id == body.action_id), None)
    if action is None:
        raise ApiError(422, "action_id is not one of this decision's actions")
    outcome = OfferOutcome(decision_id=decision.decision_id, action_id=action.action_id,
                           offer_id=action.offer_id, customer_id=decision.customer_id,
                           outcome=body.outcome, channel=decision.channel,
                           occurred_at=datetime.now(UTC))
    producer: AIOKafkaProducer = request.app.state.producer
    try:
        await producer.send_and_wait(topics.OUTCOMES.name, outcome.to_bytes(),
                                     key=decision.decision_id.encode())
    except Exception as exc:  # broker failure: tell the caller to retry
        raise ApiError(503, "could not record the outcome; retry",
                       headers={"Retry-After": "5"}) from exc
    if body.outcome.value in ("accepted", "rejected"):  # what contact limits count
        book: ContactBook = request.app.state.contacts
        offer = next((o for o in (await store.catalog()).offers
                      if o.offer_id == action.offer_id and o.budget), None)  # its budget
        await book.record(decision.customer_id, decision.decision_id, action.action_id,
                          action.offer_id, body.outcome.value, outcome.occurred_at,
                          offer=offer)
    return JSONResponse({"status": "accepted"}, status_code=202)


@router.get("/decisions/{decision_id}", response_model=Decision,
            summary="A decision with its full trace",
            responses={404: {"description": "unknown decision"}})
async def get_decision(decision_id: str, store: Store, _: AgentRole) -> Any:
    decision = await store.decision(decision_id)
    if decision is None:
        raise ApiError(404, "no decision with this id (unknown or expired)")
    return decision


def _refused(what: str, exc: ValidationError) -> ApiError:
    errors = [{"loc": list(e["loc"]), "msg": e["msg"]} for e in exc.errors()]
    where = ".".join(map(str, errors[0]["loc"]))
    return ApiError(422, f"invalid {what}{' at ' + where if where else ''}: "
                         f"{errors[0]['msg']}", errors=errors)


@router.get("/policies", summary="The decision policies and the traffic split")
async def get_policies(store: Store, _: AdminRole) -> Any:
    return await store.policies()


@router.put("/policies", summary="Replace the decision policies (refused whole when invalid)",
            responses={422: {"description": "invalid policies; the old ones stay"}})
async def put_policies(store: Store, _: AdminRole,
                       config: Annotated[Any, Body(description="PolicyConfig")]) -> Any:
    if not isinstance(config, dict):
        raise ApiError(422, "the policies must be a JSON object: {control_share, policies}")
    try:
        parsed = PolicyConfig.model_validate({k: v for k, v in config.items()
                                              if k != "version"})
    except ValidationError as exc:
        raise _refused("policies", exc) from exc
    return await store.replace_policies(parsed)


@router.get("/reports/offers", summary="Actual against expected acceptances, by offer, "
                                       "segment, value tier and policy, over time")
async def offers_report(learning: Learning, _: OpsRole, since: str | None = None,
                        until: str | None = None) -> Any:
    end = parse_as_of(until, "until", "invalid_period")
    start = parse_as_of(since, "since", "invalid_period") if since else \
        end - timedelta(days=30)
    if start >= end:
        raise ApiError(400, "since must be before until", code="invalid_period")
    hours = await learning.report_hours(reports.hour_of(start.timestamp()),
                                        reports.hour_of(end.timestamp()))
    return {"since": start, "until": end, **reports.summarise(hours)}


@router.get("/reports/uplift", summary="What each offer changes: treated against held-out "
                                       "decisions, by value tier and segment, with 95% "
                                       "intervals and each offer's Qini curve")
async def uplift_report_route(request: Request, uplift: Uplift, _: OpsRole,
                              since: str | None = None, until: str | None = None) -> Any:
    end = parse_as_of(until, "until", "invalid_period")
    start = parse_as_of(since, "since", "invalid_period") if since else \
        end - timedelta(days=30)
    if start >= end:
        raise ApiError(400, "since must be before until", code="invalid_period")
    since_h, until_h = reports.hour_of(start.timestamp()), reports.hour_of(end.timestamp())
    hours = await uplift.report_hours(since_h, until_h)
    offers = sorted({name.split("|", 1)[0] for counters in hours.values()
                     for name in counters} - {ANY})
    rows = await uplift.rows(offers)
    settings = request.app.state.settings
    return {"since": start, "until": end, "learner": uplift.name,
            "attribution_window_s": settings.attribution_window_s,
            **uplift_report.summarise(hours, rows, since_h, until_h)}


@router.post("/evaluations", summary="Off-policy estimates of another policy's profit per "
                                     "decision, from the logged decisions",
             responses={404: {"description": "no such policy, or no decisions logged"},
                        422: {"description": "the policy cannot be evaluated on this log"}})
async def evaluations(request: Request, store: Store, learning: Learning, _: OpsRole,
                      body: Annotated[Any, Body(description="EvaluationRequest")]) -> Any:
    try:
        ask = EvaluationRequest.model_validate(body)
    except ValidationError as exc:
        raise _refused("evaluation request", exc) from exc
    if ask.since and ask.until and ask.since >= ask.until:
        raise ApiError(400, "since must be before until", code="invalid_period")
    settings = request.app.state.settings
    try:
        return await evaluate(ask, settings.kafka_bootstrap, learning, await store.policies())
    except LookupError as exc:
        raise ApiError(404, str(exc)) from exc
    except Unsupported as exc:
        raise ApiError(422, f"cannot be evaluated on these decisions: {exc}",
                       code="no_support") from exc
