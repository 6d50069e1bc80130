"""``rapport bench summary``: one table of the headline figures the benches left in
``.bench/`` (see :mod:`rapport.shared.bench_figures`), each next to the limit
measured in the same run and the ratio; what a bench did not measure is marked
missing. Not a runtime path."""

from __future__ import annotations

from pathlib import Path
from typing import Any, NamedTuple

from rich.console import Console
from rich.table import Table

from . import bench_figures

DEMAND_GOAL = 0.40
"""Demand must not cost the profile path this much (the issue's goal)."""
FRESHNESS_RATES = (1000.0, 5000.0)
MISSING = "missing"
NONE = "—"


class Row(NamedTuple):
    measure: str
    figure: str
    limit: str
    ratio: str
    note: str = ""


def _n(value: float) -> str:
    return f"{value:,.0f}"


def _ms(p50: float | None, p99: float | None, top: float | None = None) -> str:
    """``p50 / p99 ms``; ``≥`` marks a quantile at ``top``, a histogram's largest bound."""
    if p50 is None or p99 is None:
        return MISSING

    def one(v: float) -> str:
        return f"{'≥' if top is not None and v >= top else ''}{v:,.0f}"

    return f"{one(p50)} / {one(p99)} ms"


def _has(figures: dict[str, Any] | None, *names: str) -> bool:
    return figures is not None and all(figures.get(n) is not None for n in names)


def _missing(measure: str, figures: dict[str, Any] | None, target: str) -> Row:
    why = (f"`rapport bench {target}` did not run" if figures is None
           else "not measured in this run")
    return Row(measure, MISSING, NONE, NONE, why)


def ingest_rows(f: dict[str, Any] | None) -> list[Row]:
    out = []
    if _has(f, "events_per_s", "perf_records_per_s"):
        assert f is not None
        out.append(Row("ingest: events/s at saturation", _n(f["events_per_s"]),
                       f"{_n(f['perf_records_per_s'])} records/s (Kafka ProducerPerformance)",
                       f"{f['events_per_s'] / f['perf_records_per_s']:.1%}"))
    else:
        out.append(_missing("ingest: events/s at saturation", f, "ingest"))
    if _has(f, "p50_ms", "p99_ms", "perf_p50_ms", "perf_p99_ms"):
        assert f is not None
        out.append(Row("ingest: latency p50 / p99 at saturation",
                       _ms(f["p50_ms"], f["p99_ms"]),
                       f"{_ms(f['perf_p50_ms'], f['perf_p99_ms'])} (ProducerPerformance)",
                       f"{f['p50_ms'] / max(f['perf_p50_ms'], 1e-9):.1f}x / "
                       f"{f['p99_ms'] / max(f['perf_p99_ms'], 1e-9):.1f}x"))
    else:
        out.append(_missing("ingest: latency p50 / p99 at saturation", f, "ingest"))
    return out


def _per_worker(f: dict[str, Any] | None, key: str, workers: int) -> Row:
    measure = f"profile: {workers} worker{'s' if workers > 1 else ''}, events/s per worker"
    if not _has(f, key, "getmany_orjson_per_s"):
        return _missing(measure, f, "profile")
    assert f is not None
    per, limit = f[key] / workers, f["getmany_orjson_per_s"]
    return Row(measure, _n(per), f"{_n(limit)} events/s (aiokafka getmany + orjson)",
               f"{per / limit:.1%}")


def _freshness(f: dict[str, Any] | None) -> list[Row]:
    measured = (f or {}).get("freshness") or []
    wanted: list[tuple[str, dict[str, Any] | None]] = []
    for rate in FRESHNESS_RATES:
        found = next((m for m in measured if not m.get("of_saturation")
                      and abs(m["rate"] - rate) < 0.5), None)
        wanted.append((f"{_n(rate)} ev/s", found))
    saturated = next((m for m in measured if m.get("of_saturation")), None)
    wanted.append((f"{saturated['of_saturation']:.0%} of saturation ({_n(saturated['rate'])}"
                   " ev/s)" if saturated else "80% of saturation", saturated))
    out = []
    for label, m in wanted:
        measure = f"freshness at {label}: ingest 200 → GET, p50 / p99"
        if m is None or m.get("p50_ms") is None:
            out.append(_missing(measure, f, "profile") if f is None or m is None
                       else Row(measure, MISSING, NONE, NONE, "no probe became visible"))
            continue
        out.append(Row(measure, _ms(m["p50_ms"], m["p99_ms"]), NONE, NONE,
                       f"{m['probes']} probes; no limit measured"))
        for stage in ("resolve", "fold"):
            q = (m.get("stages") or {}).get(stage)
            out.append(Row(f"  {stage} (ingest receipt → stored), p50 / p99",
                           _ms(q["p50"], q["p99"], q.get("top")) if q else MISSING, NONE, NONE,
                           "" if q else "stage not observed"))
    return out


def _redis(f: dict[str, Any] | None) -> Row:
    if not _has(f, "redis_bytes_per_profile", "redis_json_bytes"):
        return _missing("Redis bytes per profile (all its keys)", f, "profile")
    assert f is not None
    every, json = f["redis_bytes_per_profile"], f["redis_json_bytes"]
    per = f.get("touchpoints_per_profile")
    return Row(f"Redis bytes per profile (all its keys{f', {per} touchpoints' if per else ''})",
               f"{_n(every)} B", f"{_n(json)} B (the profile's JSON)",
               f"{every / max(json, 1e-9):.1f}x")


def _demand(f: dict[str, Any] | None) -> list[Row]:
    if not _has(f, "demand_on_per_s", "demand_off_per_s", "demand_cost"):
        return [_missing("profile: 1 worker, demand on, events/s", f, "profile"),
                _missing("demand's cost to the profile path", f, "profile")]
    assert f is not None
    on, off, cost = f["demand_on_per_s"], f["demand_off_per_s"], f["demand_cost"]
    runs = len(f.get("demand_runs_on") or []) + len(f.get("demand_runs_off") or [])
    return [Row("profile: 1 worker, demand on, events/s", _n(on),
                f"{_n(off)} events/s (demand off, same events)", f"{on / off:.1%}",
                f"back to back, {runs} runs" if runs else "back to back"),
            Row("demand's cost to the profile path", f"{cost:.1%}",
                f"goal < {DEMAND_GOAL:.0%}", NONE,
                "meets the goal" if cost < DEMAND_GOAL else "OVER the goal"),
            *_demand_redis(f)]


def _demand_redis(f: dict[str, Any]) -> list[Row]:
    """Redis's own work per event folded, demand on next to off (when measured)."""
    names = [f"demand_{s}_redis_{w}_per_event" for s in ("on", "off")
             for w in ("cpu_us", "commands")]
    if not _has(f, *names):
        return []
    cpu_on, calls_on, cpu_off, calls_off = (f[n] for n in names)
    return [Row("  Redis CPU per event folded, demand on", f"{cpu_on:,.0f} µs",
                f"{cpu_off:,.0f} µs (demand off)", f"{cpu_on / max(cpu_off, 1e-9):.2f}x",
                f"commands per event {calls_on:.2f} vs {calls_off:.2f}")]


def rows(figures: dict[str, dict[str, Any] | None]) -> list[Row]:
    """The summary's rows, from each target's figures (None: its bench did not run)."""
    ingest, profile = figures.get("ingest"), figures.get("profile")
    return [*ingest_rows(ingest), _per_worker(profile, "one_worker_per_s", 1),
            _per_worker(profile, "two_workers_per_s", 2), *_freshness(profile),
            _redis(profile), *_demand(profile)]


def table(figures: dict[str, dict[str, Any] | None]) -> Table:
    ran = ", ".join(f"{t} {f.get('at', '?')}" for t, f in figures.items() if f) or "none"
    out = Table(title="Rapport benchmark summary", caption=f"benches run: {ran}")
    for name, justify in (("measure", "left"), ("figure", "right"),
                          ("limit (same run)", "right"), ("ratio", "right"),
                          ("note", "left")):
        out.add_column(name, justify=justify)  # type: ignore[arg-type]
    for row in rows(figures):
        style = "yellow" if row.figure == MISSING or "OVER" in row.note else None
        out.add_row(*row, style=style)
    return out


def main(root: Path | None = None) -> None:
    Console().print(table(bench_figures.load(root)))
