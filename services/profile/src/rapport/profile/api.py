"""HTTP: the customer 360 read API, segments and erasure."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Query, Request, Response

from rapport.shared.auth import Role, require
from rapport.shared.customers import CustomerReadModel
from rapport.shared.profiles import CustomerProfile
from rapport.shared.service import ApiError

from .domain import describe
from .erasure import Eraser
from .store import ProfileStore

router = APIRouter(prefix="/v1", tags=["customers"])
Agent = Annotated[Role, Depends(require(Role.AGENT))]
Admin = Annotated[Role, Depends(require(Role.ADMIN))]
Ops = Annotated[Role, Depends(require(Role.OPS))]
_NOT_FOUND = {404: {"description": "unknown customer"}}


async def _store(request: Request) -> ProfileStore:
    return request.app.state.profiles


async def _reader(request: Request) -> CustomerReadModel:
    return request.app.state.reader


Store = Annotated[ProfileStore, Depends(_store)]
Reader = Annotated[CustomerReadModel, Depends(_reader)]


async def _find(reader: CustomerReadModel, identifier: str) -> CustomerProfile:
    """Any identifier of a person (profile id, user id, anonymous id, ...) finds them."""
    profile = await reader.find(identifier)
    if profile is None:
        raise ApiError(404, "no customer with this identifier")
    return profile


@router.get("/customers", summary="Find a customer by email, phone, anonymous or loyalty id",
            responses=_NOT_FOUND)
async def find_customer(_: Agent, reader: Reader,
                        email: Annotated[str | None, Query(max_length=320)] = None,
                        phone: Annotated[str | None, Query(max_length=64)] = None,
                        anonymous_id: Annotated[str | None, Query(max_length=256)] = None,
                        loyalty_id: Annotated[str | None, Query(max_length=256)] = None,
                        ) -> dict[str, Any]:
    given = [(k, v) for k, v in (("email", email), ("phone", phone),
                                 ("anonymous_id", anonymous_id), ("loyalty_id", loyalty_id))
             if v]
    if len(given) != 1:
        raise ApiError(400, "give exactly one of email, phone, anonymous_id, loyalty_id")
    kind, value = given[0]
    resolved = await reader.resolve(kind, value)
    if resolved is None:
        raise ApiError(404, "no customer with this identifier")
    return describe(await _find(reader, resolved), datetime.now(UTC))


# Ids may hold any character ingest accepts, "/" included: the path converter takes
# the rest of the path, and the timeline route is declared first.
@router.get("/customers/{customer_id:path}/timeline", summary="Recent touchpoints, newest first",
            responses=_NOT_FOUND)
async def timeline(customer_id: str, _: Agent, store: Store, reader: Reader,
                   limit: Annotated[int, Query(ge=1, le=1000)] = 50) -> dict[str, Any]:
    profile = await _find(reader, customer_id)
    return {"customer_id": profile.customer_id,
            "touchpoints": await store.timeline(profile.customer_id, limit)}


@router.get("/customers/{customer_id:path}", summary="Customer 360", responses=_NOT_FOUND)
async def customer(customer_id: str, _: Agent, reader: Reader) -> dict[str, Any]:
    return describe(await _find(reader, customer_id), datetime.now(UTC))


@router.delete("/customers/{customer_id:path}", status_code=204, summary="Erase a customer",
               responses=_NOT_FOUND)
async def erase(customer_id: str, request: Request, _: Admin, reader: Reader) -> Response:
    profile = await _find(reader, customer_id)
    eraser: Eraser = request.app.state.eraser
    await eraser.erase(profile)
    return Response(status_code=204)


@router.get("/segments", summary="Segments with their member counts")
async def list_segments(request: Request, store: Store, _: Ops) -> dict[str, Any]:
    defs = request.app.state.segments
    counts = await store.segment_counts(s.name for s in defs)
    return {"segments": [{"name": s.name, "description": s.description,
                          "match": s.match.value,
                          "conditions": [c.model_dump() for c in s.conditions],
                          "members": counts[s.name]} for s in defs]}
