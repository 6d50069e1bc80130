"""The ops dashboard: a page, then its panels pushed by server-sent events at the
interval the viewer chose (the collector samples in the background)."""

from __future__ import annotations

import asyncio
from typing import Annotated, Any
from urllib.parse import quote

from fastapi import APIRouter, Query, Request
from fastapi.responses import HTMLResponse, Response
from sse_starlette.sse import EventSourceResponse

from . import ops_view
from .ops_collector import Collector
from .sessions import Session
from .signin import TEMPLATES, render, session_of, signin_page
from .upstream import Refused, Upstreams

router = APIRouter(prefix="/ops", include_in_schema=False)
INTERVALS = (1, 2, 5, 10, 30)


@router.get("")
async def ops_page(request: Request,
                   every: Annotated[int, Query(ge=1, le=60)] = 2) -> Response:
    session = session_of(request, "ops")
    if session is None:
        return signin_page(request, "ops")
    return render(request, "ops.html", every=every, intervals=INTERVALS,
                  role=session.role.value)


async def _api_parts(up: Upstreams, session: Session) -> tuple[list[dict[str, Any]],
                                                                 dict[str, Any] | None,
                                                                 list[str]]:
    spikes_got, report = await asyncio.gather(
        up.get("profile", "/v1/demand/spikes", session.key),
        up.get("next-action", "/v1/reports/offers", session.key), return_exceptions=True)
    problems = [r.message for r in (spikes_got, report) if isinstance(r, Refused)]
    spikes = (spikes_got.get("spikes", []) if isinstance(spikes_got, dict) else [])[:5]
    for spike in spikes:
        s = spike.get("series") or {}
        try:
            got = await up.get("profile", "/v1/demand/series", session.key,
                               dimension=s.get("dimension"), metric=s.get("metric"),
                               value=s.get("value"), resolution="5m", limit=24)
            spike["spark"] = [b.get("value") or 0 for b in got.get("buckets", [])]
        except Refused:
            spike["spark"] = []
        spike["forecast_values"] = [f.get("expected") for f in spike.get("forecast") or []]
    return spikes, report if isinstance(report, dict) else None, problems


@router.get("/stream")
async def stream(request: Request,
                 every: Annotated[int, Query(ge=1, le=60)] = 2) -> Response:
    session = session_of(request, "ops")
    if session is None:
        return HTMLResponse("", status_code=401)
    collector: Collector = request.app.state.collector
    up: Upstreams = request.app.state.upstreams
    template = TEMPLATES.get_template("_ops_panels.html")

    async def events() -> Any:
        while True:
            spikes, report, problems = await _api_parts(up, session)
            view = ops_view.build(collector.data, spikes, report, problems)
            yield {"event": "panels", "data": template.render(v=view).replace("\n", " ")}
            await asyncio.sleep(every)

    return EventSourceResponse(events(), ping=15)


@router.get("/spikes/{spike_id}/audience")
async def audience(request: Request, spike_id: str) -> Response:
    session = session_of(request, "ops")
    if session is None:
        return signin_page(request, "ops")
    try:
        got = await request.app.state.upstreams.get(
            "profile", f"/v1/demand/spikes/{quote(spike_id, safe='')}/audience", session.key)
    except Refused as exc:
        got = {"error": exc.message}
    return render(request, "audience.html", a=got, spike_id=spike_id)
