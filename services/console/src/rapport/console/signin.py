"""Signing in and out: the API key is posted once (a form body, never a URL), checked
against the same key ring as every service, and exchanged for a session cookie."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any

from fastapi import APIRouter, Form, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from fastapi.templating import Jinja2Templates

from rapport.shared.auth import KeyRing, Role, allows

from .sessions import COOKIE, Session, Sessions

TEMPLATES = Jinja2Templates(directory=str(Path(__file__).parent / "templates"))
router = APIRouter(include_in_schema=False)
SCREENS = {"agent": Role.AGENT, "ops": Role.OPS}
TITLES = {"agent": "Agent screen", "ops": "Operations"}


def session_of(request: Request, screen: str) -> Session | None:
    """The signed-in session, when its role may see ``screen``."""
    sessions: Sessions = request.app.state.sessions
    found = sessions.get(request.cookies.get(COOKIE))
    if found is None or not allows(found.role, SCREENS[screen]):
        return None
    return found


def signin_page(request: Request, screen: str, error: str | None = None,
                status: int = 200) -> HTMLResponse:
    return TEMPLATES.TemplateResponse(request, "signin.html", {
        "screen": screen, "title": TITLES[screen], "error": error,
        "role": "agent or admin" if screen == "agent" else "ops or admin"},
        status_code=status)


def render(request: Request, template: str, **context: Any) -> HTMLResponse:
    return TEMPLATES.TemplateResponse(request, template, context)


@router.get("/")
async def home() -> Response:
    return RedirectResponse("/agent", status_code=303)


@router.get("/favicon.ico")
async def favicon() -> Response:
    return Response(status_code=204)


@router.post("/signin")
async def sign_in(request: Request, key: Annotated[str, Form(max_length=512)],
                  screen: Annotated[str, Form(pattern="^(agent|ops)$")]) -> Response:
    keyring: KeyRing = request.app.state.keyring
    role = keyring.role_of(key.strip())
    if role is None:
        return signin_page(request, screen, "This key is not known. Check it and try again.",
                           401)
    if not allows(role, SCREENS[screen]):
        return signin_page(request, screen, f"A {role.value} key cannot open this screen: it "
                           f"needs an {'agent or admin' if screen == 'agent' else 'ops or admin'}"
                           " key.", 403)
    sessions: Sessions = request.app.state.sessions
    sessions.close(request.cookies.get(COOKIE))
    sid = sessions.open(key.strip(), role)
    answer = RedirectResponse(f"/{screen}", status_code=303)
    answer.set_cookie(COOKIE, sid, httponly=True, samesite="strict", path="/",
                      secure=request.app.state.settings.secure_cookies)
    return answer


@router.post("/signout")
async def sign_out(request: Request,
                   screen: Annotated[str, Form(pattern="^(agent|ops)$")] = "agent") -> Response:
    sessions: Sessions = request.app.state.sessions
    sessions.close(request.cookies.get(COOKIE))
    answer = RedirectResponse(f"/{screen}", status_code=303)
    answer.delete_cookie(COOKIE, path="/", httponly=True, samesite="strict")
    return answer
