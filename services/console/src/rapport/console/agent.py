"""The agent screen: find a customer, see their 360 and the next-best-actions, record
what the customer said, and have calling customers pop up by themselves (SSE).

Every form is a POST (htmx), so no identifier typed or shown ever lands in a URL, a
browser history or an access log."""

from __future__ import annotations

import asyncio
import html
import time
from typing import Annotated, Any

import structlog
from fastapi import APIRouter, Form, Request
from fastapi.responses import HTMLResponse, Response
from sse_starlette.sse import EventSourceResponse

from . import agent_view, search
from .screenpop import ScreenPop, newest_call
from .sessions import Session
from .signin import TEMPLATES, render, session_of, signin_page
from .upstream import Refused, Upstreams

log = structlog.get_logger(__name__)
router = APIRouter(prefix="/agent", include_in_schema=False)
OUTCOMES = {"accept": ("accepted", "Accepted"), "decline": ("rejected", "Declined"),
            "skip": ("ignored", "Skipped")}
Text = Annotated[str, Form(min_length=1, max_length=320)]


def _up(request: Request) -> Upstreams:
    return request.app.state.upstreams


def _signed_out() -> HTMLResponse:
    # htmx follows HX-Redirect: an expired session lands on the sign-in form.
    return HTMLResponse("", status_code=401, headers={"HX-Redirect": "/agent"})


@router.get("")
async def agent_page(request: Request) -> Response:
    session = session_of(request, "agent")
    if session is None:
        return signin_page(request, "agent")
    return render(request, "agent.html", role=session.role.value)


@router.post("/search")
async def find(request: Request, q: Text) -> Response:
    session = session_of(request, "agent")
    if session is None:
        return _signed_out()
    up = _up(request)
    tries = search.lookups(q)
    found = await asyncio.gather(*(up.find(session.key, k, v) for k, v in tries),
                                 return_exceptions=True)
    matches: dict[str, dict[str, Any]] = {}
    failure = None
    for (kind, _), got in zip(tries, found, strict=True):
        if isinstance(got, Refused) and got.status != 404:
            failure = got.message
        elif isinstance(got, dict) and got.get("customer_id"):
            matches.setdefault(got["customer_id"], {"customer": got, "by": kind})
    if len(matches) == 1:
        (only,) = matches.values()
        return await _customer(request, session, only["customer"])
    return render(request, "_matches.html", failure=failure, matches=[
        {"customer_id": cid, "name": agent_view.display_name(m["customer"]), "by": m["by"],
         "segments": m["customer"].get("segments") or []} for cid, m in matches.items()])


@router.post("/customer")
async def customer(request: Request, customer_id: Text,
                   call_reason: Annotated[str | None, Form(max_length=300)] = None
                   ) -> Response:
    session = session_of(request, "agent")
    if session is None:
        return _signed_out()
    try:
        found = await _up(request).customer(session.key, customer_id)
    except Refused as exc:
        return render(request, "_matches.html", matches=[], failure=None if exc.status == 404
                      else exc.message)
    return await _customer(request, session, found, call_reason)


async def _customer(request: Request, session: Session, found: dict[str, Any],
                    call_reason: str | None = None) -> Response:
    up = _up(request)
    started = time.perf_counter()
    cid = found["customer_id"]
    timeline, scores, decided = await asyncio.gather(
        up.timeline(session.key, cid), up.scores(session.key, cid),
        up.next_best_action(session.key, cid), return_exceptions=True)
    problems = [r.message for r in (timeline, scores, decided) if isinstance(r, Refused)]
    for r in (timeline, scores, decided):
        if isinstance(r, BaseException) and not isinstance(r, Refused):
            raise r
    decision = None
    if isinstance(decided, dict):
        try:  # the trace has each action's cost, for its one-line reason
            decision = await up.decision(session.key, decided["decision_id"])
        except Refused:
            decision = decided
    view = agent_view.customer_view(found, timeline.get("touchpoints", [])
                                    if isinstance(timeline, dict) else [],
                                    scores if isinstance(scores, dict) else None)
    log.info("agent_customer_shown", ms=round((time.perf_counter() - started) * 1000, 1))
    return render(request, "_customer.html", c=view, call_reason=call_reason,
                  problems=problems, decision=decision, group=(decision or {}).get("group"),
                  actions=agent_view.actions_view(decision, view["churn"]))


@router.post("/outcome")
async def outcome(request: Request, decision_id: Text, action_id: Text,
                  choice: Annotated[str, Form(pattern="^(accept|decline|skip)$")],
                  name: Annotated[str, Form(max_length=200)] = "") -> Response:
    session = session_of(request, "agent")
    if session is None:
        return _signed_out()
    kind, label = OUTCOMES[choice]
    try:
        await _up(request).outcome(session.key, decision_id, action_id, kind)
    except Refused as exc:
        return render(request, "_outcome.html", ok=False, label=label, name=name,
                      message=exc.message)
    return render(request, "_outcome.html", ok=True, label=label, name=name, kind=kind)


@router.post("/why")
async def why(request: Request, decision_id: Text) -> Response:
    session = session_of(request, "agent")
    if session is None:
        return _signed_out()
    try:
        decision = await _up(request).decision(session.key, decision_id)
    except Refused as exc:
        # An upstream message can echo what was posted: escaped like the templates.
        return HTMLResponse(f"<p class='error'>{html.escape(exc.message)}</p>")
    return render(request, "_trace.html", d=decision)


async def _new_call(up: Upstreams, session: Session, pid: str, window_s: float,
                    popped: set[object], tries: int = 8) -> tuple[dict[str, Any], Any] | None:
    """The customer's timeline and their call not shown yet. The profile update may
    reach Kafka a moment before the timeline has the call: ask again, briefly."""
    for attempt in range(tries):
        try:
            got = await up.timeline(session.key, pid, limit=10)
        except Refused:
            return None
        call = newest_call(got.get("touchpoints", []), time.time(), window_s)
        if call is not None and call.get("message_id") not in popped:
            return got, call
        if attempt < tries - 1:
            await asyncio.sleep(0.1 * (attempt + 1))
    return None


@router.get("/calls")
async def calls(request: Request) -> Response:
    """Server-sent events: a ``call`` event with the calling customer's card."""
    session = session_of(request, "agent")
    if session is None:
        return _signed_out()
    pop: ScreenPop = request.app.state.screenpop
    up = _up(request)

    async def events() -> Any:
        queue = pop.subscribe()
        popped: set[object] = set()
        try:
            yield {"event": "hello", "data": "<span>Listening for calls</span>"}
            while True:
                pid = await queue.get()
                found = await _new_call(up, session, pid, pop.window_s, popped)
                if found is None:
                    continue
                got, call = found
                popped.add(call.get("message_id"))
                reason = (call.get("properties") or {}).get("reason")  # type: ignore[union-attr]
                html = TEMPLATES.get_template("_call.html").render(
                    customer_id=got.get("customer_id", pid), reason=reason,
                    at=call.get("timestamp"))
                yield {"event": "call", "data": html.replace("\n", " ")}
        finally:
            pop.unsubscribe(queue)

    return EventSourceResponse(events(), ping=15)
