"""HTTP: decisions, outcomes and the offer catalog."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime
from typing import Annotated, Any

from aiokafka import AIOKafkaProducer
from fastapi import APIRouter, Body, Depends, Request
from fastapi.responses import JSONResponse
from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from rapport.shared import facts, topics
from rapport.shared.auth import Role, require
from rapport.shared.customers import CustomerReadModel
from rapport.shared.events import Channel, OfferOutcome, OutcomeKind
from rapport.shared.service import ApiError

from . import consent
from .catalog import Catalog, Offer
from .contacts import ContactBook
from .domain import Decision, DecisionRequest, decide, ranked
from .store import NextActionStore

router = APIRouter(prefix="/v1", tags=["next-best-action"])
ChannelRole = Annotated[Role, Depends(require(Role.CHANNEL))]
AgentRole = Annotated[Role, Depends(require(Role.AGENT))]
AdminRole = Annotated[Role, Depends(require(Role.ADMIN))]


async def _store(request: Request) -> NextActionStore:
    return request.app.state.store


async def _reader(request: Request) -> CustomerReadModel:
    return request.app.state.reader


Store = Annotated[NextActionStore, Depends(_store)]
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
    value: float
    reasons: list[str]


class NbaResponse(BaseModel):
    decision_id: str
    customer_id: str
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
        errors = [{"loc": list(e["loc"]), "msg": e["msg"]} for e in exc.errors()]
        first = errors[0]
        raise ApiError(422, f"invalid catalog at {'.'.join(map(str, first['loc']))}: "
                            f"{first['msg']}", errors=errors) from exc
    await store.replace_catalog(catalog)
    return {"offers": len(catalog.offers)}


@router.post("/next-best-action", response_model=NbaResponse, summary="Decide what to offer")
async def next_best_action(body: NbaRequest, request: Request, _: ChannelRole,
                           store: Store, reader: Reader) -> Any:
    identifier = body.customer_id or body.anonymous_id
    assert identifier is not None
    now = datetime.now(UTC)
    found = await reader.find(identifier)
    customer_id, profile, scores = identifier, None, None
    if found is not None:
        customer_id, profile = found.customer_id, facts.describe(found, now)
        scores = (await reader.scores(found, now)).model_dump(mode="json")
    catalog = await store.catalog()
    propensities = await store.propensities(o.offer_id for o in catalog.offers)
    req = DecisionRequest(decision_id=uuid.uuid4().hex, customer_id=customer_id,
                          channel=body.channel, placement=body.placement, limit=body.limit,
                          context=body.context, profile=profile, scores=scores)
    candidates = ranked(catalog, req, propensities, now)
    book: ContactBook = request.app.state.contacts
    sms = consent.is_sms(body.channel, body.placement, body.context)
    reservation = await book.reserve(customer_id, candidates, body.limit, now,
                                     channel=body.channel, sms=sms) \
        if book.needed(candidates, body.channel, sms) else None
    decision = decide(catalog, req, propensities, now, reservation)
    await store.save_decision(decision)
    return decision


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
