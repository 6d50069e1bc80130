"""What create_app gives every service, through the real apps in-process (no
lifespan, so no Kafka or Redis): request bodies capped before authentication
and parsing, and /readyz reasons that never echo an exception's text."""

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import httpx
import pytest
from fastapi import FastAPI, Request
from structlog.testing import capture_logs

from rapport.ingest.app import build as build_ingest
from rapport.ingest.settings import IngestSettings
from rapport.next_action.app import build as build_next_action
from rapport.next_action.settings import NextActionSettings
from rapport.profile.app import build as build_profile
from rapport.profile.settings import ProfileSettings
from rapport.scoring.app import build as build_scoring
from rapport.scoring.settings import ScoringSettings
from rapport.shared import service
from rapport.shared.service import NotReady, add_readiness_check, create_app

MIB = 1024 * 1024
JSON = {"Content-Type": "application/json"}
AGENT = {"Authorization": "Bearer dev-agent", **JSON}
ADMIN = {"Authorization": "Bearer dev-admin", **JSON}
CHANNEL = {"Authorization": "Bearer dev-channel", **JSON}

# (service, method, path, headers of a key with the route's role)
ROUTES = [
    ("profile", "DELETE", "/v1/customers/c1", ADMIN),
    ("profile", "GET", "/v1/customers/c1", AGENT),
    ("scoring", "GET", "/v1/customers/c1/scores", AGENT),
    ("next-action", "POST", "/v1/next-best-action", CHANNEL),
    ("next-action", "POST", "/v1/outcomes", CHANNEL),
    ("next-action", "PUT", "/v1/offers", ADMIN),
]


def app_of(name: str, **settings) -> FastAPI:
    builds = {"profile": (build_profile, ProfileSettings),
              "scoring": (build_scoring, ScoringSettings),
              "next-action": (build_next_action, NextActionSettings),
              "ingest": (build_ingest, IngestSettings)}
    build, settings_type = builds[name]
    return build(settings_type(dev_keys=True, **settings))


def client(app: FastAPI) -> httpx.AsyncClient:
    return httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://test")


class Chunks:
    """A streamed (chunked, no Content-Length) body that counts what was read of it."""

    def __init__(self, chunk: bytes, count: int) -> None:
        self.chunk, self.count, self.read = chunk, count, 0

    async def __aiter__(self) -> AsyncIterator[bytes]:
        for _ in range(self.count):
            self.read += 1
            yield self.chunk


def assert_too_large(resp: httpx.Response, limit: int) -> None:
    assert resp.status_code == 413, resp.text
    assert resp.json() == {"code": "payload_too_large",
                           "message": f"request body over {limit} bytes"}


@pytest.mark.parametrize(("name", "method", "path", "headers"), ROUTES)
async def test_declared_over_size_body_is_refused_before_authentication(name, method, path,
                                                                         headers):
    async with client(app_of(name)) as http:
        body = b"{" + b" " * MIB  # not even JSON: it must not be parsed
        for auth in ({}, {"Authorization": "Bearer wrong"}, headers):
            resp = await http.request(method, path, content=body, headers={**JSON, **auth})
            assert_too_large(resp, MIB)
            assert resp.headers["connection"] == "close"


@pytest.mark.parametrize(("name", "method", "path", "headers"), ROUTES)
async def test_streamed_over_size_body_is_stopped_at_the_limit(name, method, path, headers):
    async with client(app_of(name)) as http:
        for auth in ({}, headers):
            body = Chunks(b" " * 65536, 1000)  # 64 MiB if read to the end
            resp = await http.request(method, path, content=body, headers={**JSON, **auth})
            assert_too_large(resp, MIB)
            assert body.read <= MIB // 65536 + 1


async def test_bodies_within_the_limit_reach_the_app_whole():
    app = app_with_checks({})

    @app.post("/echo")
    async def echo(request: Request) -> dict[str, int]:
        return {"bytes": len(await request.body())}

    async with client(app) as http:
        resp = await http.post("/echo", content=Chunks(b"x" * 65536, 16))  # exactly 1 MiB
        assert resp.status_code == 200 and resp.json() == {"bytes": MIB}
        resp = await http.post("/echo", content=b"y" * 1000)
        assert resp.json() == {"bytes": 1000}
        assert (await http.post("/echo")).json() == {"bytes": 0}
    real = app_of("next-action")
    real.state.store = object()  # what the lifespan would open; never reached here
    async with client(real) as http:
        small = b'{"customer_id": "c1", "channel": "web"}'
        resp = await http.post("/v1/next-best-action", content=small, headers=JSON)
        assert resp.status_code == 401  # authentication answers: the body got through


async def test_the_limit_is_a_setting_and_ingest_keeps_its_own():
    async with client(app_of("scoring", max_body_bytes=1000)) as http:
        path = "/v1/customers/c1/scores"
        assert_too_large(await http.request("GET", path, content=b" " * 1001), 1000)
        resp = await http.request("GET", path, content=b" " * 1000)
        assert resp.status_code == 401
    async with client(app_of("ingest")) as http:
        limit = 500 * 1024
        resp = await http.post("/v1/batch", content=Chunks(b" " * 10240, 100), headers=JSON)
        assert_too_large(resp, limit)
        resp = await http.post("/v1/batch", content=b"{}", headers={
            **JSON, "Content-Length": "nonsense"})
        assert resp.status_code == 400 and resp.json()["code"] == "bad_request"


def app_with_checks(checks: dict) -> FastAPI:
    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        for name, check in checks.items():
            add_readiness_check(app, name, check)
        yield

    return create_app(service="test", title="t", description="d", lifespan=lifespan)


async def test_readyz_names_the_check_and_a_fixed_reason_only(monkeypatch):
    monkeypatch.setattr(service, "READY_TIMEOUT_S", 0.05)
    detail = "Error 111 connecting to 10.0.0.7:6379. Connection refused."

    async def refused() -> None:
        raise ConnectionError(detail)

    async def hangs() -> None:
        import asyncio

        await asyncio.sleep(5)

    async def stopped() -> None:
        raise NotReady("stopped") from RuntimeError(detail)

    async def fine() -> None:
        return None

    app = app_with_checks({"redis": refused, "kafka": hangs, "consumer": stopped, "x": fine})
    async with app.router.lifespan_context(app), client(app) as http:
        with capture_logs() as logs:
            resp = await http.get("/readyz")
    assert resp.status_code == 503
    body = resp.json()
    assert body["checks"] == {"redis": "unreachable (ConnectionError)", "kafka": "timeout",
                              "consumer": "stopped", "x": "ok"}
    assert body["code"] == "unavailable"
    assert body["message"] == ("redis: unreachable (ConnectionError); kafka: timeout; "
                               "consumer: stopped")
    assert "10.0.0.7" not in resp.text and "refused" not in resp.text
    failed = {e["check"]: e for e in logs if e["event"] == "readiness_check_failed"}
    assert failed["redis"]["error"] == detail and failed["consumer"]["error"] == detail
    assert failed["kafka"]["reason"] == "timeout"
