"""HTTP: customer scores, always computed fresh from the stored profile."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Request

from rapport.shared.auth import Role, require
from rapport.shared.service import ApiError

from . import domain
from .store import ScoringStore

router = APIRouter(prefix="/v1", tags=["scores"])
Agent = Annotated[Role, Depends(require(Role.AGENT))]


@router.get("/customers/{customer_id:path}/scores",
            summary="RFM, CLV, churn risk, value tier, profit",
            response_model=domain.Scores, responses={404: {"description": "unknown customer"}})
async def scores(customer_id: str, request: Request, _: Agent) -> Any:
    store: ScoringStore = request.app.state.store
    profile = await store.profile(customer_id)
    if profile is None:
        resolved = await store.resolve(customer_id)
        profile = await store.profile(resolved) if resolved else None
    if profile is None:
        raise ApiError(404, "no customer with this identifier")
    return domain.score(profile, datetime.now(UTC), request.app.state.policy)
