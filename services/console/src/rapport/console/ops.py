"""The ops dashboard: a page, then its panels pushed by server-sent events at the
interval the viewer chose (the collector samples in the background)."""

from __future__ import annotations

import asyncio
from typing import Annotated, Any
from urllib.parse import quote

from fastapi import APIRouter, Query, Request
from fastapi.responses import HTMLResponse, Response
from sse_starlette.sse import EventSourceResponse

from . import ops_demand, ops_view
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


SHOWN_INCIDENTS = 4


async def _lead_parts(up: Upstreams, key: str, lead: dict[str, Any],
                      spike: dict[str, Any]) -> tuple[list[Any], dict[str, Any] | None]:
    """The lead series' recent buckets and its forecast view (either may be missing)."""
    s = lead.get("series") or {}
    ident = {"dimension": s.get("dimension"), "metric": s.get("metric"),
             "value": s.get("value")}
    got, view = await asyncio.gather(
        up.get("profile", "/v1/demand/series", key, **ident, limit=24,
               resolution=ops_demand.resolution(spike.get("bucket_s"))),
        up.get("profile", "/v1/demand/forecast", key, **ident), return_exceptions=True)
    buckets = got.get("buckets", []) if isinstance(got, dict) else []
    return buckets, view if isinstance(view, dict) else None


async def _demand(up: Upstreams, key: str) -> tuple[dict[str, Any], list[str]]:
    """Incidents (or, from an older profile service, the spikes grouped here), each
    lead charted with its forecast, and the forecast quality across series."""
    spikes_got, incidents_got, quality_got = await asyncio.gather(
        up.get("profile", "/v1/demand/spikes", key),
        up.get("profile", "/v1/demand/incidents", key, limit=SHOWN_INCIDENTS),
        up.get("profile", "/v1/demand/forecasts/quality", key), return_exceptions=True)
    problems = [r.message for r in (spikes_got, incidents_got)
                if isinstance(r, Refused) and r.status != 404]
    spikes = spikes_got.get("spikes", []) if isinstance(spikes_got, dict) else []
    by_id = {str(s.get("id")): s for s in spikes}
    if isinstance(incidents_got, dict):
        incidents, count = incidents_got.get("incidents", []), incidents_got.get("count")
    else:
        incidents = ops_demand.from_spikes(spikes)
        count = len(incidents)
    incidents = incidents[:SHOWN_INCIDENTS]
    leads = [i.get("lead") or (i.get("members") or [{}])[0] for i in incidents]
    parts = await asyncio.gather(*(_lead_parts(up, key, lead, by_id.get(str(lead.get("id")))
                                               or {}) for lead in leads))
    cards = [ops_demand.card(i, by_id, b, v) for i, (b, v) in zip(incidents, parts,
                                                                   strict=True)]
    return {"incidents": cards, "count": count if count is not None else len(cards),
            "spikes": len(spikes), "grouped": isinstance(incidents_got, dict),
            "quality": ops_demand.quality(quality_got if isinstance(quality_got, dict)
                                          else None)}, problems


async def _report(up: Upstreams, key: str) -> tuple[dict[str, Any] | None, list[str]]:
    try:
        got = await up.get("next-action", "/v1/reports/offers", key)
    except Refused as exc:
        return None, [exc.message]
    except ValueError:  # an answer that is not JSON
        return None, ["next-action: the offers report is not JSON"]
    return got if isinstance(got, dict) else None, []


async def _api_parts(up: Upstreams, session: Session) -> tuple[dict[str, Any],
                                                                 dict[str, Any] | None,
                                                                 list[str]]:
    (demand, problems), (report, refused) = await asyncio.gather(
        _demand(up, session.key), _report(up, session.key))
    return demand, report, list(dict.fromkeys(problems + refused))


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
            demand, report, problems = await _api_parts(up, session)
            view = ops_view.build(collector.data, demand, report, problems)
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
