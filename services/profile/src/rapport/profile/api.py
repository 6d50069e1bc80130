"""HTTP: the customer 360 read API."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Query, Request

from rapport.shared.auth import Role, require
from rapport.shared.profiles import CustomerProfile
from rapport.shared.service import ApiError

from .domain import affinities_at, normalize_identifier
from .store import ProfileStore

router = APIRouter(prefix="/v1", tags=["customers"])
Agent = Annotated[Role, Depends(require(Role.AGENT))]
_LOOKUP_ORDER = ("user_id", "anonymous_id", "email", "phone", "loyalty_id")


def _store(request: Request) -> ProfileStore:
    return request.app.state.profiles


Store = Annotated[ProfileStore, Depends(_store)]


def render(profile: CustomerProfile, now: datetime) -> dict[str, Any]:
    body = profile.model_dump(mode="json", exclude={"trait_times", "recent_message_ids"})
    body["rfm"] = profile.rfm(now).model_dump(mode="json")
    m = profile.metrics
    body["metrics"]["average_order_value"] = round(m.revenue / m.orders, 2) if m.orders else None
    body["metrics"]["margin_rate"] = (round(m.margin / m.margin_revenue, 4)
                                      if m.margin_revenue else None)
    body["metrics"]["nps"] = round(m.nps_sum / m.nps_responses, 2) if m.nps_responses else None
    body["affinities"] = affinities_at(profile, now)
    return body


async def _find(store: ProfileStore, customer_id: str) -> CustomerProfile:
    profile = await store.load(customer_id)
    if profile is None:
        for kind in _LOOKUP_ORDER:
            resolved = await store.resolve(kind, customer_id)
            if resolved is not None:
                profile = await store.load(resolved)
                break
    if profile is None:
        raise ApiError(404, "no customer with this identifier")
    return profile


@router.get("/customers/{customer_id}", summary="Customer 360",
            responses={404: {"description": "unknown customer"}})
async def customer(customer_id: str, store: Store, _: Agent) -> dict[str, Any]:
    return render(await _find(store, customer_id), datetime.now(UTC))


@router.get("/customers", summary="Find a customer by email, phone or anonymous id",
            responses={404: {"description": "unknown customer"}})
async def find_customer(store: Store, _: Agent,
                        email: Annotated[str | None, Query(max_length=320)] = None,
                        phone: Annotated[str | None, Query(max_length=64)] = None,
                        anonymous_id: Annotated[str | None, Query(max_length=256)] = None,
                        ) -> dict[str, Any]:
    given = [(k, v) for k, v in (("email", email), ("phone", phone),
                                 ("anonymous_id", anonymous_id)) if v]
    if len(given) != 1:
        raise ApiError(400, "give exactly one of email, phone, anonymous_id")
    kind, value = given[0]
    resolved = await store.resolve(kind, normalize_identifier(kind, value))
    if resolved is None:
        raise ApiError(404, "no customer with this identifier")
    return render(await _find(store, resolved), datetime.now(UTC))


@router.get("/customers/{customer_id}/timeline", summary="Recent touchpoints, newest first",
            responses={404: {"description": "unknown customer"}})
async def timeline(customer_id: str, store: Store, _: Agent,
                   limit: Annotated[int, Query(ge=1, le=1000)] = 50) -> dict[str, Any]:
    profile = await _find(store, customer_id)
    return {"customer_id": profile.customer_id,
            "touchpoints": await store.timeline(profile.customer_id, limit)}
