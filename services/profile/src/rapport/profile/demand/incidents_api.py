"""HTTP (ops): demand incidents, the correlated spike alerts grouped (:mod:`.incidents`).

Query parameters are checked here rather than by FastAPI's validation, so that a bad
one is answered 400 ``{"code", "message"}`` as the contract asks of these routes."""

from __future__ import annotations

import re
from typing import Annotated, Any

from fastapi import APIRouter, Query

from rapport.shared.service import ApiError

from .alerts import iso
from .api import Ops, Reads
from .incidents import ordered

router = APIRouter(prefix="/v1/demand", tags=["demand"])
_ID = re.compile(r"[0-9a-f]{1,64}")
SORTS = ("newest", "largest")
DIRECTIONS = ("up", "down")


def _limit(raw: str | None) -> int:
    if raw is None:
        return 50
    if not raw.isdigit() or not 1 <= int(raw) <= 1000:
        raise ApiError(400, "limit must be a whole number from 1 to 1000",
                       code="invalid_limit")
    return int(raw)


def _choice(name: str, raw: str | None, allowed: tuple[str, ...]) -> str | None:
    if raw is not None and raw not in allowed:
        raise ApiError(400, f"{name} must be one of {', '.join(allowed)}",
                       code=f"invalid_{name}")
    return raw


@router.get("/incidents", summary="Active demand incidents: correlated spikes, grouped",
            responses={400: {"description": "a query parameter is invalid"}})
async def incidents(reads: Reads, _: Ops,
                    direction: Annotated[str | None, Query(description="up | down")] = None,
                    category: Annotated[str | None, Query()] = None,
                    sort: Annotated[str | None, Query(description="newest (default) | "
                                                                  "largest")] = None,
                    limit: Annotated[str | None, Query(description="1-1000, default 50")]
                    = None) -> dict[str, Any]:
    wanted = _choice("direction", direction, DIRECTIONS)
    order = _choice("sort", sort, SORTS) or "newest"
    most = _limit(limit)
    if category is not None and not 0 < len(category) <= 200:
        raise ApiError(400, "category must be 1 to 200 characters", code="invalid_category")
    found = [i for i in (await reads.store.open_incidents()).values()
             if (wanted is None or i["direction"] == wanted)
             and (category is None or i.get("category") == category)]
    closed = await reads.store.closed_through()
    return {"incidents": ordered(found, order)[:most], "count": len(found), "sort": order,
            "closed_through": None if closed is None else iso(closed + reads.buckets.base)}


@router.get("/incidents/{incident_id}", summary="One demand incident, active or ended",
            responses={404: {"description": "no incident with this id"},
                       400: {"description": "not an incident id"}})
async def incident(reads: Reads, _: Ops, incident_id: str) -> dict[str, Any]:
    if not _ID.fullmatch(incident_id):
        raise ApiError(400, "an incident id is a hexadecimal hash",
                       code="invalid_incident_id")
    found, active = await reads.store.incident(incident_id)
    if found is None:
        raise ApiError(404, f"no demand incident with id {incident_id!r}")
    return {**found, "active": active}
