"""HTTP: customer scores computed for the moment asked, and the models in use."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Body, Depends, Query, Request
from prometheus_client import Counter
from pydantic import BaseModel, ConfigDict, Field

from rapport.shared.auth import Role, require
from rapport.shared.customers import CustomerReadModel
from rapport.shared.moments import parse_as_of
from rapport.shared.scores.compute import Scores
from rapport.shared.scores.model import ClvModel
from rapport.shared.service import ApiError

from .fitting import FitRejected
from .models import ModelStore
from .refit import FitBusy, Refitter
from .showing import models_in_use

router = APIRouter(prefix="/v1", tags=["scores"])
Agent = Annotated[Role, Depends(require(Role.AGENT))]
Ops = Annotated[Role, Depends(require(Role.OPS))]
Admin = Annotated[Role, Depends(require(Role.ADMIN))]
SERVED = Counter("rapport_scoring_scores_served_total", "Customer scores computed and served")


async def _reader(request: Request) -> CustomerReadModel:
    return request.app.state.reader


Reader = Annotated[CustomerReadModel, Depends(_reader)]


@router.get("/customers/{customer_id:path}/scores",
            summary="RFM, CLV, churn risk, value tier and profit at a moment",
            response_model=Scores,
            responses={404: {"description": "unknown customer"},
                       400: {"description": "as_of is not a time"}})
async def scores(customer_id: str, _: Agent, reader: Reader,
                 as_of: Annotated[str | None, Query(
                     max_length=64, description="ISO 8601 time the scores describe "
                                                "(default now)")] = None,
                 horizon_days: Annotated[int | None, Query(
                     ge=1, le=3650, description="also forecast this many days")] = None,
                 ) -> Any:
    at = parse_as_of(as_of)
    profile = await reader.find(customer_id)
    if profile is None:
        raise ApiError(404, "no customer with this identifier")
    result = await reader.scores(profile, at, horizon_days)
    SERVED.inc()
    return result


@router.get("/models", summary="The models in use, their parameters and fit diagnostics")
async def models(request: Request, _: Ops, reader: Reader) -> dict[str, Any]:
    store: ModelStore = request.app.state.models
    return await models_in_use(reader, store)


class FitRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")

    as_of: str | None = Field(default=None, max_length=64,
                              description="fit on purchases up to this moment (default now)")


@router.post("/models/clv/fit", response_model=ClvModel,
             summary="Fit BG/NBD and Gamma-Gamma on every purchase history; use the result",
             responses={409: {"description": "no fit possible (the model in use stays)"}})
async def fit(request: Request, _: Admin,
              body: Annotated[FitRequest | None, Body()] = None) -> Any:
    refitter: Refitter = request.app.state.refitter
    at = parse_as_of(body.as_of if body else None)
    try:
        return await refitter.fit(at)
    except FitRejected as exc:
        raise ApiError(409, f"{exc.reason}; the model in use stays",
                       code="fit_rejected") from exc
    except FitBusy as exc:
        raise ApiError(409, str(exc), code="fit_running") from exc

