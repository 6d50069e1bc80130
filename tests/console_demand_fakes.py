"""A profile service's demand answers for the console's tests, made by the profile's own
pure code (alerts, incidents, forecaster, forecast view) so their shapes are the real
ones: a surge of shoe orders moving the category, its product, the total and the west
(ONE incident, up) and a drop in hat views (another, down), each series with three days
of seasonal, noisy history. ``stub_profile`` serves them over HTTP, to ops keys only."""

from __future__ import annotations

import math
import random
import time
from types import SimpleNamespace
from typing import Any

from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse, PlainTextResponse

from rapport.profile.demand import alerts, forecast_view, incidents
from rapport.profile.demand.forecast import Forecaster
from rapport.profile.demand.series import Dimension, Metric, SeriesKey

W = 300
HISTORY = 288 * 3
SURGE_BUCKETS = 3
# series, usual level per bucket, factor during the surge, category of the series
SERIES = [
    (SeriesKey(Dimension.CATEGORY, "shoes", Metric.ORDERS), 20.0, 3.4, "shoes"),
    (SeriesKey(Dimension.PRODUCT, "s1", Metric.ORDERS), 8.0, 4.1, "shoes"),
    (SeriesKey(Dimension.TOTAL, "all", Metric.ORDERS), 120.0, 1.6, None),
    (SeriesKey(Dimension.REGION, "west", Metric.ORDERS), 45.0, 2.1, None),
    (SeriesKey(Dimension.CATEGORY, "hats", Metric.VIEWS), 300.0, 0.35, "hats"),
    (SeriesKey(Dimension.PRODUCT, "h1", Metric.VIEWS), 90.0, 0.3, "hats"),
]


def _usual(level: float, slot: int) -> float:
    return level * (1 + 0.35 * math.sin(slot / 288 * 2 * math.pi))


def build(now: float | None = None, seed: int = 7) -> dict[str, Any]:
    """Every answer the ops page asks the profile service for, as of ``now``."""
    rng = random.Random(seed)
    latest = int((now or time.time()) // W) * W - W  # the last closed bucket
    started = latest - (SURGE_BUCKETS - 1) * W
    out: dict[str, Any] = {"series": {}, "forecast": {}, "spikes": [], "quality": {}}
    for key, level, factor, category in SERIES:
        f = Forecaster(step_s=W)
        values = []
        for i in range(HISTORY):
            at = latest - (HISTORY - 1 - i) * W
            usual = _usual(level, at // W)
            value = max(0.0, rng.gauss(usual, math.sqrt(usual)))
            if at >= started:
                value *= factor
            f.update(at, value)
            values.append((at, value, usual))
        out["series"][key.field] = {
            "series": key.to_json(), "resolution": "5m", "estimated": False,
            "buckets": [{"start": alerts.iso(at), "end": alerts.iso(at + W),
                         "value": round(v, 1), "closed": True} for at, v, _ in values[-24:]]}
        out["forecast"][key.field] = forecast_view.view(key, f)
        out["quality"][key.field] = forecast_view.quality_json(f.quality())
        at0, v0, e0 = values[-SURGE_BUCKETS]
        at1, v1, e1 = values[-1]

        def reading(value: float, expected: float) -> Any:
            return SimpleNamespace(score=4.2, expected=expected, alert="start",
                                   direction="up" if value > expected else "down",
                                   magnitude=(value - expected) / expected)
        alert = alerts.opened(key, at0, W, v0, reading(v0, e0), [],
                              None if key.dimension is Dimension.CATEGORY else category)
        out["spikes"].append(alerts.refreshed(alert, key, at1, W, v1, reading(v1, e1),
                                              f.forecast(36)))
    book = incidents.Book()
    _, member_of = incidents.advance(book, latest, W, out["spikes"], [])
    incidents.stamp(out["spikes"], member_of)
    out["incidents"] = incidents.ordered(book.open.values())
    return out


def stub_profile(data: dict[str, Any], *, incidents_route: bool = True) -> FastAPI:
    """The profile service's demand routes over ``data`` (``build``), for ops keys."""
    app = FastAPI()
    app.state.calls = []

    def refused(request: Request) -> JSONResponse | None:
        app.state.calls.append(str(request.url))
        if request.headers.get("authorization") != "Bearer dev-ops":
            return JSONResponse({"code": "forbidden", "message": "ops only"}, 403)
        return None

    def missing() -> JSONResponse:
        return JSONResponse({"code": "not_found", "message": "not found"}, 404)

    def field(request: Request) -> str:
        q = request.query_params
        return SeriesKey(Dimension(q["dimension"]), q.get("value") or "all",
                         Metric(q["metric"])).field

    @app.get("/metrics")
    async def metrics() -> PlainTextResponse:
        return PlainTextResponse("")

    @app.get("/v1/demand/spikes")
    async def spikes(request: Request) -> Any:
        return refused(request) or {"spikes": data["spikes"], "count": len(data["spikes"])}

    @app.get("/v1/demand/incidents")
    async def listed(request: Request) -> Any:
        if not incidents_route:
            return missing()
        limit = int(request.query_params.get("limit", 50))
        return refused(request) or {"incidents": data["incidents"][:limit],
                                    "count": len(data["incidents"]), "sort": "newest"}

    @app.get("/v1/demand/series")
    async def series(request: Request) -> Any:
        return refused(request) or data["series"].get(field(request)) or missing()

    @app.get("/v1/demand/forecast")
    async def forecast(request: Request) -> Any:
        return refused(request) or data["forecast"].get(field(request)) or missing()

    @app.get("/v1/demand/forecasts/quality")
    async def quality(request: Request) -> Any:
        return refused(request) or forecast_view.summary(data["quality"])

    return app
