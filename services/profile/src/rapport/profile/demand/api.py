"""HTTP (ops): active demand spikes with forecasts, their audiences, demand series and
their forecasts for dashboards, heavy products and the state of the demand clock."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Path, Query, Request

from rapport.shared.auth import Role, require
from rapport.shared.service import ApiError

from ..store import ProfileStore
from . import audience, audiences, forecast_view, sketches
from .alerts import iso
from .clock import Buckets, label, member_of
from .forecast import Forecaster
from .series import TOTAL, Dimension, Metric, SeriesKey, present
from .store import ClockView, DemandStore

router = APIRouter(prefix="/v1/demand", tags=["demand"])
Ops = Annotated[Role, Depends(require(Role.OPS))]


@dataclass(frozen=True)
class DemandReads:
    """What the demand routes read from (set on ``app.state.demand`` by the wiring)."""

    store: DemandStore
    profiles: ProfileStore
    buckets: Buckets
    partitions_prefix: str
    lateness_s: float
    half_life_days: float


async def _reads(request: Request) -> DemandReads:
    reads: DemandReads | None = getattr(request.app.state, "demand", None)
    if reads is None:
        raise ApiError(503, "demand is starting")
    return reads


Reads = Annotated[DemandReads, Depends(_reads)]


def _width(reads: DemandReads, resolution: str) -> int:
    widths = reads.buckets.by_label()
    if resolution not in widths:
        raise ApiError(400, f"resolution must be one of {', '.join(widths)}",
                       code="invalid_resolution")
    return widths[resolution]


@router.get("/spikes", summary="Active demand spikes, with a forecast each")
async def spikes(reads: Reads, _: Ops,
                 dimension: Annotated[Dimension | None, Query()] = None,
                 metric: Annotated[Metric | None, Query()] = None) -> dict[str, Any]:
    found = [a for a in await reads.store.open_alerts()
             if (dimension is None or a["series"]["dimension"] == dimension.value)
             and (metric is None or a["series"]["metric"] == metric.value)]
    found.sort(key=lambda a: (-abs(a["peak"]["magnitude"]), a["started_at"], a["id"]))
    for a in found:  # alerts opened before incidents were kept have none
        a.setdefault("incident_id", None)
    closed = await reads.store.closed_through()
    return {"spikes": found, "count": len(found),
            "closed_through": None if closed is None else iso(closed + reads.buckets.base)}


@router.get("/spikes/{spike_id}/audience",
            summary="Segments and customers most likely to want what is spiking",
            responses={404: {"description": "no active spike with this id"}})
async def spike_audience(reads: Reads, _: Ops, scorer: audiences.Scorer,
                         spike_id: Annotated[str, Path(max_length=64)],
                         limit: Annotated[int, Query(ge=1, le=1000)] = 50) -> dict[str, Any]:
    alert, active = await reads.store.alert(spike_id)
    if alert is None:
        raise ApiError(404, f"no demand spike with id {spike_id!r}")
    if not active:
        raise ApiError(404, f"demand spike {spike_id!r} ended at {alert['ended_at']}",
                       code="spike_ended")
    s = alert["series"]
    series = SeriesKey(Dimension(s["dimension"]), s["value"], Metric(s["metric"]))
    category = audience.category_of(series, alert.get("category"))
    body: dict[str, Any] = {"spike_id": spike_id, "series": s, "category": category,
                            "incident_id": alert.get("incident_id")}
    now = datetime.now(UTC)
    if category is None:  # region, channel, segment, total: by the customers' scores
        return {**body, **await audiences.by_reach(reads.store, reads.profiles, scorer, series,
                                                   limit=limit, now=now)}
    return {**body, **await audiences.by_category(
        reads.store, reads.profiles, scorer, category, limit=limit, now=now,
        half_life_days=reads.half_life_days)}


@router.get("/series", summary="Recent buckets of one demand series (event time)")
async def series(reads: Reads, _: Ops, dimension: Annotated[Dimension, Query()],
                 metric: Annotated[Metric, Query()],
                 value: Annotated[str | None, Query(min_length=1, max_length=200)] = None,
                 resolution: Annotated[str, Query(max_length=8)] = "5m",
                 limit: Annotated[int, Query(ge=1, le=1000)] = 48) -> dict[str, Any]:
    width = _width(reads, resolution)
    key = _series_key(dimension, metric, value)
    view = await reads.store.clock_view(reads.partitions_prefix)
    closed = await reads.store.closed_through()
    body: dict[str, Any] = {"series": key.to_json(), "resolution": label(width),
                            "estimated": dimension is Dimension.PRODUCT, "buckets": []}
    if not view.clocks:
        return body
    latest = reads.buckets.start(max(view.clocks.values()), width)
    starts = [latest - i * width for i in range(limit - 1, -1, -1)]
    amounts = await reads.store.amounts(width, starts, key.field)
    closed_end = None if closed is None else closed + reads.buckets.base
    body["buckets"] = [{"start": iso(s), "end": iso(s + width),
                        "value": present(metric, amount),
                        "closed": closed_end is not None and s + width <= closed_end}
                       for s, amount in zip(starts, amounts, strict=True)]
    return body


def _series_key(dimension: Dimension, metric: Metric, value: str | None) -> SeriesKey:
    if dimension is Dimension.TOTAL:
        value = value or TOTAL
    if value is None:
        raise ApiError(400, f"value is required for dimension {dimension.value}",
                       code="missing_value")
    return SeriesKey(dimension, value, metric)


@router.get("/forecast", summary="One series' forecast: the next hour and the next day, "
                                 "with 80 % intervals, and how good its forecasts have been",
            responses={404: {"description": "the series is not tracked"}})
async def forecast(reads: Reads, _: Ops, dimension: Annotated[Dimension, Query()],
                   metric: Annotated[Metric, Query()],
                   value: Annotated[str | None, Query(min_length=1, max_length=200)] = None,
                   ) -> dict[str, Any]:
    key = _series_key(dimension, metric, value)
    slot = await reads.store.slot(key.field)
    if slot is None or slot.get("forecast") is None:
        raise ApiError(404, "this series is not tracked (yet): it has no forecast",
                       code="unknown_series")
    return forecast_view.view(key, Forecaster.from_state(slot["forecast"]))


@router.get("/forecasts/quality", summary="How good the forecasts of every tracked series "
                                          "have been: MASE against the seasonal-naive "
                                          "forecast and interval coverage")
async def forecast_quality(reads: Reads, _: Ops,
                           dimension: Annotated[Dimension | None, Query()] = None,
                           ) -> dict[str, Any]:
    found = await reads.store.forecast_quality()
    if dimension is not None:
        found = {k: v for k, v in found.items() if SeriesKey.parse(k).dimension is dimension}
    return forecast_view.summary(found)


@router.get("/top", summary="Heavy products of the current hour or day (estimates)")
async def top(reads: Reads, _: Ops, metric: Annotated[Metric, Query()],
              resolution: Annotated[str, Query(max_length=8)] = "1d",
              limit: Annotated[int, Query(ge=1, le=1000)] = 20) -> dict[str, Any]:
    width = _width(reads, resolution)
    if width == reads.buckets.base:
        raise ApiError(400, "heavy products are kept per hour and per day",
                       code="invalid_resolution")
    if metric is Metric.SEARCHES:
        raise ApiError(400, "searches name no product", code="invalid_metric")
    closed = await reads.store.closed_through()
    body: dict[str, Any] = {"metric": metric.value, "resolution": label(width),
                            "products": []}
    if closed is None:
        return body
    start = reads.buckets.start(closed, width)
    raw = (await reads.store.rollup_sketches(width, start)).get(metric.value)
    heavy = sketches.top(sketches.load(raw, 4), limit) if raw is not None else []
    products = []
    for h in heavy:
        row = h.to_json()
        for k in ("estimate", "lower_bound", "upper_bound"):
            row[k] = present(metric, row[k])  # type: ignore[arg-type]
        products.append(row)
    return {**body, "start": iso(start), "end": iso(start + width),
            "through": iso(closed + reads.buckets.base), "products": products}


@router.get("/status", summary="Demand clock: watermark, last closed bucket, late events")
async def status(reads: Reads, _: Ops) -> dict[str, Any]:
    view = await reads.store.clock_view(reads.partitions_prefix)
    closed = await reads.store.closed_through()
    late = await reads.store.late()
    return {
        "bucket_s": reads.buckets.base, "lateness_s": reads.lateness_s,
        "resolutions": list(reads.buckets.by_label()),
        "closed_through": None if closed is None else iso(closed + reads.buckets.base),
        "partitions": _partitions(view),
        "late": {"events": late.get("events", 0),
                 **{m.value: present(m, late.get(m.value, 0)) for m in Metric}}}


def _partitions(view: ClockView) -> dict[str, Any]:
    """Each re-keyed partition's clock (its latest source's), its slowest source's (what
    it holds the watermark at) and how many upstream partitions fed it."""
    grouped: dict[str, list[str]] = {}
    for key in view.clocks:
        grouped.setdefault(member_of(key), []).append(key)
    out: dict[str, Any] = {}
    for member, sources in sorted(grouped.items()):
        clocks = [view.clocks[k] for k in sources]
        active = [view.active[k] for k in sources if k in view.active]
        out[member] = {"clock": iso(max(clocks)), "slowest_source_clock": iso(min(clocks)),
                       "sources": len(sources),
                       "last_active": iso(max(active)) if active else None}
    return out
