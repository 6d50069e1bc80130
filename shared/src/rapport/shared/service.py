"""What every Rapport HTTP service has in common: health, readiness against real
dependencies, Prometheus metrics, the contract's error body, request logging and
a cap on request bodies.

A service builds its app with :func:`create_app`, giving its own lifespan (which
opens connections and registers readiness checks) and its routers.
"""

from __future__ import annotations

import asyncio
import os
import time
from collections import deque
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import AbstractAsyncContextManager, asynccontextmanager
from typing import Any

import orjson
import redis.exceptions
import structlog
from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, PlainTextResponse
from prometheus_client import (
    CONTENT_TYPE_LATEST,
    CollectorRegistry,
    Counter,
    Histogram,
    generate_latest,
    multiprocess,
)
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from .settings import DEFAULT_MAX_BODY_BYTES

log = structlog.get_logger(__name__)

HTTP_REQUESTS = Counter("rapport_http_requests_total", "HTTP requests",
                        ["service", "method", "route", "status"])
HTTP_LATENCY = Histogram("rapport_http_request_seconds", "HTTP request latency",
                         ["service", "method", "route"],
                         buckets=(.001, .0025, .005, .01, .025, .05, .1, .25, .5, 1, 2.5, 5))

Check = Callable[[], Awaitable[None]]
READY_TIMEOUT_S = 4.0
"""How long /readyz waits for one check (probes time out at 5 s)."""
Lifespan = Callable[[FastAPI], AbstractAsyncContextManager[None]]

_STATUS_CODES = {400: "bad_request", 401: "unauthorized", 403: "forbidden", 404: "not_found",
                 405: "method_not_allowed", 409: "conflict", 413: "payload_too_large",
                 415: "unsupported_media_type", 422: "invalid", 429: "too_many_requests",
                 503: "unavailable"}


def error_body(status: int, message: str, code: str | None = None, **extra: Any) -> dict[str, Any]:
    return {"code": code or _STATUS_CODES.get(status, "error"), "message": message, **extra}


class ApiError(Exception):
    """An error with a contract-shaped body, raised from routes and adapters."""

    def __init__(self, status: int, message: str, code: str | None = None,
                 headers: dict[str, str] | None = None, **extra: Any) -> None:
        super().__init__(message)
        self.status = status
        self.body = error_body(status, message, code, **extra)
        self.headers = headers


def add_readiness_check(app: FastAPI, name: str, check: Check) -> None:
    app.state.readiness[name] = check


class NotReady(Exception):
    """Raised by a readiness check: ``reason`` is a fixed phrase that /readyz shows;
    the details go to the log (chain the cause with ``raise ... from``)."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


def _reason(exc: BaseException) -> str:
    """What /readyz says of a failed check: a fixed reason and at most the exception's
    type, never its text (addresses, internals, possibly data)."""
    if isinstance(exc, NotReady):
        return exc.reason
    if isinstance(exc, TimeoutError):
        return "timeout"
    return f"unreachable ({type(exc).__name__})"


async def _run_checks(checks: dict[str, Check]) -> dict[str, str]:
    async def one(name: str, check: Check) -> str:
        try:
            await asyncio.wait_for(check(), timeout=READY_TIMEOUT_S)
            return "ok"
        except Exception as exc:  # readiness reports any failure as its reason
            reason = _reason(exc)
            detail = exc.__cause__ or exc
            log.warning("readiness_check_failed", check=name, reason=reason,
                        error_type=type(detail).__name__, error=str(detail)[:300])
            return reason

    results = await asyncio.gather(*(one(n, c) for n, c in checks.items()))
    return dict(zip(checks, results, strict=True))


class Observe:
    """Counts and times every request by route and status, and logs server errors.

    Plain ASGI rather than ``@app.middleware("http")``: Starlette's BaseHTTPMiddleware
    runs each request through a task group and a memory stream, which cost several times
    what a score read itself costs."""

    def __init__(self, app: ASGIApp, service: str) -> None:
        self.app = app
        self.service = service

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        start = time.perf_counter()
        status = 500

        async def sending(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
            await send(message)

        try:
            await self.app(scope, receive, sending)
        finally:
            route = scope.get("route")
            path = getattr(route, "path", "unmatched")
            method = scope.get("method", "")
            elapsed = time.perf_counter() - start
            HTTP_REQUESTS.labels(self.service, method, path, str(status)).inc()
            HTTP_LATENCY.labels(self.service, method, path).observe(elapsed)
            if status >= 500:
                log.warning("http_request", method=method, route=path, status=status,
                            ms=round(elapsed * 1000, 2))


class BodyLimit:
    """Refuses a request body over ``max_bytes`` with 413 before the app sees any of it.

    A declared Content-Length over the limit is refused at once; any other body is read
    here, up to the limit, and replayed to the app. So no route parses, and no
    authentication answers, an over-size body, however it is sent (pure ASGI, so the
    body is never read twice).
    """

    def __init__(self, app: ASGIApp, max_bytes: int) -> None:
        self.app = app
        self.max_bytes = max_bytes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        declared = next((v for k, v in scope["headers"] if k == b"content-length"), None)
        if declared is not None and not declared.strip().isdigit():
            await _send_error(send, 400, "invalid Content-Length header")
            return
        if declared is not None and int(declared) > self.max_bytes:
            await self._refuse(send)
            return
        messages: deque[Message] = deque()
        size = 0
        while True:
            message = await receive()
            messages.append(message)
            if message["type"] != "http.request":  # the client left: the app will see it
                break
            size += len(message.get("body", b""))
            if size > self.max_bytes:
                await self._refuse(send)
                return
            if not message.get("more_body", False):
                break

        async def replay() -> Message:
            return messages.popleft() if messages else await receive()

        await self.app(scope, replay, send)

    async def _refuse(self, send: Send) -> None:
        await _send_error(send, 413, f"request body over {self.max_bytes} bytes")


async def _send_error(send: Send, status: int, message: str) -> None:
    """A contract-shaped error; the connection closes (the body was not read to its end)."""
    body = orjson.dumps(error_body(status, message))
    await send({"type": "http.response.start", "status": status, "headers": [
        (b"content-type", b"application/json"), (b"content-length", str(len(body)).encode()),
        (b"connection", b"close")]})
    await send({"type": "http.response.body", "body": body})


def create_app(*, service: str, title: str, description: str, lifespan: Lifespan,
               version: str = "0.1.0", max_body_bytes: int = DEFAULT_MAX_BODY_BYTES) -> FastAPI:
    async def wrapped(app: FastAPI) -> AsyncIterator[None]:
        app.state.readiness = {}
        async with lifespan(app):
            log.info("service_started", service=service)
            yield
        log.info("service_stopped", service=service)

    app = FastAPI(title=title, description=description, version=version,
                  lifespan=asynccontextmanager(wrapped))
    app.state.readiness = {}

    @app.exception_handler(ApiError)
    async def _api_error(_: Request, exc: ApiError) -> JSONResponse:
        return JSONResponse(exc.body, status_code=exc.status, headers=exc.headers)

    @app.exception_handler(StarletteHTTPException)
    async def _http_error(_: Request, exc: StarletteHTTPException) -> JSONResponse:
        return JSONResponse(error_body(exc.status_code, str(exc.detail)),
                              status_code=exc.status_code, headers=getattr(exc, "headers", None))

    @app.exception_handler(RequestValidationError)
    async def _invalid(_: Request, exc: RequestValidationError) -> JSONResponse:
        errors = [{"loc": list(e.get("loc", ())), "msg": e.get("msg", "")} for e in exc.errors()]
        first = errors[0] if errors else {"loc": [], "msg": "invalid request"}
        where = ".".join(str(p) for p in first["loc"] if p != "body") or "body"
        return JSONResponse(error_body(422, f"{where}: {first['msg']}", errors=errors),
                              status_code=422)

    @app.exception_handler(redis.exceptions.ConnectionError)
    @app.exception_handler(redis.exceptions.TimeoutError)
    async def _store_down(_: Request, exc: Exception) -> JSONResponse:
        # A dependency down is not the caller's fault, nor a bug: retry later.
        log.warning("dependency_unavailable", error=type(exc).__name__)
        return JSONResponse(error_body(503, "a data store is not reachable; retry"),
                            status_code=503, headers={"Retry-After": "5"})

    # Added before Observe, so it runs inside it: refusals are counted and timed too.
    app.add_middleware(BodyLimit, max_bytes=max_body_bytes)

    app.add_middleware(Observe, service=service)

    @app.get("/healthz", tags=["ops"], summary="Process is alive")
    async def healthz() -> dict[str, str]:
        return {"status": "ok", "service": service}

    @app.get("/readyz", tags=["ops"], summary="Kafka and Redis connections work",
             responses={503: {"description": "a dependency is not reachable"}})
    async def readyz(request: Request) -> JSONResponse:
        checks = await _run_checks(request.app.state.readiness)
        ready = bool(checks) and all(v == "ok" for v in checks.values())
        body = {"status": "ready" if ready else "unready", "service": service, "checks": checks}
        if not ready:
            body.update(error_body(503, "; ".join(f"{k}: {v}" for k, v in checks.items()
                                                   if v != "ok") or "starting"))
        return JSONResponse(body, status_code=200 if ready else 503)

    @app.get("/metrics", tags=["ops"], summary="Prometheus metrics",
             response_class=PlainTextResponse)
    async def metrics() -> PlainTextResponse:
        if os.environ.get("PROMETHEUS_MULTIPROC_DIR"):  # several worker processes: sum them
            registry = CollectorRegistry()
            multiprocess.MultiProcessCollector(registry)
            return PlainTextResponse(generate_latest(registry), media_type=CONTENT_TYPE_LATEST)
        return PlainTextResponse(generate_latest(), media_type=CONTENT_TYPE_LATEST)

    return app


def serve(build: Callable[[Any], FastAPI], settings: Any, port: int) -> None:
    """Run one service process: JSON logs as configured, uvicorn's own logs through them."""
    import uvicorn

    from . import logs

    logs.configure(settings.log_level, settings.log_format)
    uvicorn.run(build(settings), host=settings.host, port=port, log_config=None,
                access_log=False)
    exit_when_done()


def serve_workers(factory: str, settings: Any, port: int, workers: int) -> None:
    """Run ``workers`` processes of a service (``factory``: "module:function" building
    its app); Prometheus sums their metrics from files in a directory of their own."""
    import shutil
    import tempfile
    from pathlib import Path

    import uvicorn

    from . import logs

    logs.configure(settings.log_level, settings.log_format)
    metrics_dir = Path(tempfile.mkdtemp(prefix="rapport-metrics-"))
    os.environ["PROMETHEUS_MULTIPROC_DIR"] = str(metrics_dir)
    try:
        uvicorn.run(factory, factory=True, host=settings.host, port=port, workers=workers,
                    log_config=None, access_log=False)
    finally:
        shutil.rmtree(metrics_dir, ignore_errors=True)


def exit_when_done(grace_s: float = 5.0) -> None:
    """End the process once the service has stopped, in bounded time: a library thread
    left running (faust's consumer thread has been seen to) must not keep a stopped
    service alive. Everything a service owns is stored (Redis, Kafka) before it stops."""
    import sys
    import threading

    deadline = time.monotonic() + grace_s
    for thread in threading.enumerate():
        if thread is not threading.main_thread() and not thread.daemon:
            thread.join(max(0.0, deadline - time.monotonic()))
    stuck = [t.name for t in threading.enumerate()
             if t is not threading.main_thread() and not t.daemon and t.is_alive()]
    if stuck:
        log.warning("threads_left_at_exit", threads=stuck[:10])
        sys.stdout.flush()
        sys.stderr.flush()
        os._exit(0)
