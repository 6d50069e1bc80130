"""Demand on the ops page, as the template needs it: incidents (correlated spikes
grouped upstream) as the unit ops act on, each lead drawn with its forecast and 80 %
interval after what was observed, and how good the forecasts have been.

Pure: the profile service's JSON in, plain dicts out. Every field is read defensively
(``.get``): an older or partly answering profile service must degrade the panel, never
break the page."""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from datetime import datetime
from typing import Any

Json = Mapping[str, Any]
SHOWN_MEMBERS = 12
BAND_POINTS = 12
NONE = "\u2013"  # an en dash: no value


def epoch(text: Any) -> float | None:
    try:
        return datetime.fromisoformat(str(text)).timestamp()
    except ValueError:
        return None


def hhmm(text: Any) -> str:
    """A started-at as ops read it at a glance (UTC, as the services keep time)."""
    at = epoch(text)
    return NONE if at is None else datetime.fromisoformat(str(text)).strftime("%H:%M")


def series_label(series: Json | None) -> str:
    s = series or {}
    dim, value, metric = s.get("dimension", "?"), s.get("value", "?"), s.get("metric", "")
    name = "all demand" if dim == "total" else f"{dim} {value}"
    return f"{name} · {metric}" if metric else name


def change(magnitude: Any) -> str:
    """A relative change as ``+240 %``: magnitude is (observed - expected) / expected."""
    try:
        return f"{float(magnitude) * 100:+.0f} %"
    except (TypeError, ValueError):
        return NONE


def resolution(bucket_s: Any) -> str:
    """A bucket width as the series route names it (``5m``, ``1h``)."""
    try:
        width = int(bucket_s)
    except (TypeError, ValueError):
        return "5m"
    for unit, seconds in (("d", 86400), ("h", 3600), ("m", 60)):
        if width > 0 and width % seconds == 0:
            return f"{width // seconds}{unit}"
    return f"{width}s" if width > 0 else "5m"


def from_spikes(spikes: Iterable[Json]) -> list[dict[str, Any]]:
    """Incidents rebuilt from the spikes' ``incident_id`` when the incidents route does
    not answer (an older profile service): each unassigned spike stands alone."""
    grouped: dict[str, list[Json]] = {}
    for s in spikes:
        grouped.setdefault(str(s.get("incident_id") or f"spike-{s.get('id')}"), []).append(s)
    out = []
    for iid, members in grouped.items():
        ms = sorted(({"id": m.get("id"), "series": m.get("series") or {},
                      "started_at": m.get("started_at"),
                      "magnitude": (m.get("peak") or {}).get("magnitude", m.get("magnitude"))}
                     for m in members), key=lambda m: -abs(float(m["magnitude"] or 0)))
        lead = next((m for m in ms if m["series"].get("dimension") == "category"), ms[0])
        out.append({"id": iid, "direction": members[0].get("direction"),
                    "started_at": min(str(m.get("started_at") or "") for m in members),
                    "members": ms, "size": len(ms), "lead": lead,
                    "peak_magnitude": ms[0]["magnitude"]})
    return sorted(out, key=lambda i: str(i["started_at"]), reverse=True)


def band(buckets: Sequence[Json], forecast: Sequence[Json]) -> list[list[Any]] | None:
    """uPlot data ``[x, observed, expected, lower, upper]`` (epoch seconds): observed
    buckets, then the forecast buckets after the last observed one. The forecast
    starts at the last observed value so the line and band grow out of it."""
    seen = [(epoch(b.get("start")), b.get("value")) for b in buckets]
    seen = [(x, v if v is not None else 0) for x, v in seen if x is not None]
    last = seen[-1][0] if seen else None
    ahead = [(epoch(p.get("at") or p.get("start")), p) for p in forecast]
    ahead = [(x, p) for x, p in ahead if x is not None and (last is None or x > last)]
    ahead = ahead[:BAND_POINTS]
    if len(seen) + len(ahead) < 2:
        return None
    xs, observed = [x for x, _ in seen], [v for _, v in seen]
    expected: list[Any] = [None] * len(seen)
    lower, upper = list(expected), list(expected)
    if seen and ahead:
        expected[-1] = lower[-1] = upper[-1] = observed[-1]
    for x, p in ahead:
        xs.append(x)
        observed.append(None)
        expected.append(p.get("expected"))
        lower.append(p.get("lower", p.get("expected")))
        upper.append(p.get("upper", p.get("expected")))
    return [xs, observed, expected, lower, upper]


def _interval(part: Json | None) -> dict[str, Any] | None:
    if not part or part.get("expected") is None:
        return None
    return {"expected": part.get("expected"), "lower": part.get("lower"),
            "upper": part.get("upper")}


def forecast_totals(view: Json | None) -> dict[str, Any]:
    """The lead series' next hour and next day (total with its interval) and its own
    running MASE, from ``GET /v1/demand/forecast``; empty when it did not answer."""
    v = view or {}
    quality = v.get("quality") or {}
    return {"next_hour": _interval(v.get("next_hour")), "next_day": _interval(v.get("next_day")),
            "mase": {h: (quality.get(h) or {}).get("mase") for h in ("next_hour", "next_day")},
            "interval": v.get("interval")}


def card(incident: Json, spikes_by_id: Mapping[str, Json], buckets: Sequence[Json],
         forecast_view: Json | None) -> dict[str, Any]:
    """One incident as a card: its lead (named, charted), the rest as members."""
    lead = incident.get("lead") or (incident.get("members") or [{}])[0]
    members = []
    for m in incident.get("members") or []:
        active = m.get("id") in spikes_by_id and not m.get("ended_at")
        members.append({"id": m.get("id"), "label": series_label(m.get("series")),
                        "change": change(m.get("magnitude")), "started": hhmm(m.get("started_at")),
                        "lead": m.get("id") == lead.get("id"), "active": active,
                        "ended": hhmm(m["ended_at"]) if m.get("ended_at") else None})
    lead_spike = spikes_by_id.get(str(lead.get("id"))) or {}
    size = incident.get("size") or len(members)
    return {"id": incident.get("id"), "lead": series_label(lead.get("series")),
            "lead_id": lead.get("id") if lead_spike else None, "category": incident.get("category"),
            "direction": incident.get("direction") or lead_spike.get("direction") or "?",
            "change": change(lead.get("magnitude")),
            "peak": change(incident.get("peak_magnitude", lead.get("magnitude"))),
            "size": size, "others": max(0, size - 1), "started": hhmm(incident.get("started_at")),
            "started_at": incident.get("started_at"),
            "dimensions": incident.get("dimensions") or sorted(
                {(m.get("series") or {}).get("dimension", "?")
                 for m in incident.get("members") or []}),
            "members": members[:SHOWN_MEMBERS], "more": max(0, len(members) - SHOWN_MEMBERS),
            "chart": band(buckets, lead_spike.get("forecast") or []),
            "forecast": forecast_totals(forecast_view)}


def quality(summary: Json | None) -> dict[str, Any] | None:
    """The forecast quality summary across series (``/v1/demand/forecasts/quality``):
    MASE below 1 beats the seasonal-naive forecast; coverage should sit near 80 %."""
    if not summary:
        return None
    rows = []
    for horizon, name in (("next_hour", "next hour"), ("next_day", "next day")):
        h = summary.get(horizon) or {}
        rows.append({"horizon": name, "mase_mean": h.get("mase_mean"),
                     "mase_median": h.get("mase_median"), "coverage": h.get("coverage"),
                     "scored": h.get("scored_series") or 0, "points": h.get("points") or 0,
                     "worst": [{"label": series_label(w.get("series")), "mase": w.get("mase")}
                               for w in (h.get("worst") or [])[:3]]})
    return {"series": summary.get("series") or 0, "rows": rows}
