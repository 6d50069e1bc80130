"""``rapport bench scoring``: score reads and the population refit against the limits
measured in the same run, on the ``bench`` stack (its own Kafka and Redis).

- profiles: synthetic customers whose purchases follow BG/NBD (purchase rate
  lambda ~ Gamma(r, alpha), dropout after each repeat purchase with p ~ Beta(a, b)) and
  whose spend follows Gamma-Gamma, with the rest of a profile as the profile service
  keeps it (identifiers, traits, channels, affinities, consents, the 64 latest message
  fingerprints); written straight to Redis with ``CustomerProfile.to_stored()``
  (pipelined, from two processes: a bench-only shortcut past ingest and profile), and
  the population sketches built from them;
- score reads: a scoring service process on that Redis, ``GET
  /v1/customers/{id}/scores`` for random customers from one client process (httpx) at
  fixed open-loop rates, latency counted from when each request was due (a slow
  answer delays no later request), then at saturation (a fixed number in flight); the
  CPU each read cost the service and the client (from /proc); and ``wrk`` at
  saturation, a client that costs next to nothing: the service's own ceiling;
- their limits: ``redis-benchmark`` GETs of a profile-sized value, and a bare
  in-process loop of ``CustomerReadModel.find`` + ``scores`` (and ``scores`` alone):
  what one read costs without HTTP;
- refit: a million such customers, ``Refitter.fit`` in a fresh process (so its peak
  RSS is the fit's), its gather (the scan of every profile) against its fit, and the
  fitted parameters against the generating ones.

It prints figures; it asserts nothing.
"""

from __future__ import annotations

import asyncio
import contextlib
import multiprocessing
import re
import resource
import time
import uuid
from datetime import datetime

from rich.console import Console
from rich.table import Table

from rapport.shared import redis_store
from rapport.shared.customers import CustomerReadModel
from rapport.shared.localstack import Stack
from rapport.shared.purchases import day_before

from .bench_data import (
    TRUTH,
    as_of_now,
    customer_id,
    write_population,
    write_profiles,
)
from .bench_reads import (
    closed_loop,
    in_process,
    measured,
    open_loop,
    pct,
    profile_size,
    redis_benchmark,
    wrk_saturation,
)

console = Console()
CHUNK = 10_000
SCORE_GOAL_P99_MS, SCORE_GOAL_RATE = 2.0, 2000.0
REFIT_GOAL_S = 60.0



def _refit_child(redis_url: str, as_of: datetime, out: multiprocessing.Queue) -> None:
    """In a fresh process: the fit, its time and the process's peak RSS."""
    from .models import ModelStore
    from .refit import Refitter

    async def go() -> dict:
        redis = redis_store.connect(redis_url)
        try:
            before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
            t0 = time.perf_counter()
            model = await Refitter(CustomerReadModel(redis), ModelStore(redis)).fit(as_of)
            total = time.perf_counter() - t0
            return {"model": model.model_dump(mode="json"), "wall_s": total,
                    "rss_before_mb": before / 1024,
                    "rss_peak_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024}
        finally:
            await redis.aclose()

    try:
        out.put(asyncio.run(go()))
    except Exception as exc:  # reported by the parent
        out.put({"error": repr(exc)})


def refit(redis_url: str, as_of: datetime) -> dict:
    ctx = multiprocessing.get_context("spawn")
    queue = ctx.Queue()
    proc = ctx.Process(target=_refit_child, args=(redis_url, as_of, queue))
    proc.start()
    try:
        result = queue.get(timeout=1800)
    finally:
        proc.join(60)
        if proc.is_alive():
            proc.kill()
    if "error" in result:
        raise RuntimeError(f"the refit failed: {result['error']}")
    return result


async def full_gather_rate(redis_url: str, as_of: datetime, limit: int) -> float:
    """Profiles/s of the gather as it was: every profile validated whole
    (``scan_profiles``), then ``profile.purchases.summary`` (on the first ``limit``)."""
    redis = redis_store.connect(redis_url)
    try:
        seen, began = 0, time.perf_counter()
        async with contextlib.aclosing(CustomerReadModel(redis).scan_profiles()) as batches:
            async for batch in batches:
                for profile in batch:
                    profile.purchases.summary(as_of)
                seen += len(batch)
                if seen >= limit:
                    break
        return seen / (time.perf_counter() - began)
    finally:
        await redis.aclose()


async def _flush(url: str) -> None:
    redis = redis_store.connect(url)
    try:
        await redis.flushall()
    finally:
        await redis.aclose()


# --- the run ----------------------------------------------------------------------------

class Rows(list[tuple[str, str]]):
    """Figures, printed as soon as measured (a long run that fails keeps what it got)."""

    def append(self, row: tuple[str, str]) -> None:
        console.print(f"  {row[0]}: [bold]{row[1]}[/]")
        super().append(row)


def _verdict(ok: bool) -> str:
    return "[green]met[/]" if ok else "[red]missed[/]"


def main(*, customers: int, profiles: int, seconds: int, rates: list[float]) -> None:
    stack = Stack("bench", say=lambda m: console.print(f"[dim]{m}[/]"))
    stack.wipe()
    rows = Rows()
    run = uuid.uuid4().hex[:6]
    as_of = as_of_now()
    end_day = day_before(as_of)
    written = 0
    try:
        stack.up(services=False)
        if profiles > 0:
            console.print(f"Score reads: {profiles:,} synthetic profiles ...")
            points = write_profiles(stack.redis_url, run, 0, profiles, end_day)
            written = profiles
            asyncio.run(write_population(stack.redis_url, points))
            ids = [customer_id(run, i) for i in range(profiles)]
            stored, usage = asyncio.run(profile_size(stack.redis_url, ids))
            rows.append(("profile stored (zlib JSON) / Redis MEMORY USAGE",
                         f"{stored:,.0f} B / {usage:,.0f} B"))
            rows += reads(stack, run, ids, seconds, rates, round(stored), as_of)
        if customers > 0:
            if customers < written:
                asyncio.run(_flush(stack.redis_url))
                written = 0
            console.print(f"Refit: {customers:,} customers ...")
            write_profiles(stack.redis_url, run, written, customers - written, end_day)
            rows += refit_rows(stack, customers, as_of)
    finally:
        stack.down()
    table = Table(title="scoring benchmark")
    table.add_column("measure")
    table.add_column("value", justify="right")
    for name, value in rows:
        table.add_row(name, value)
    console.print(table)


def reads(stack: Stack, run: str, ids: list[str], seconds: int, rates: list[float],
          size: int, as_of: datetime) -> list[tuple[str, str]]:
    out: list[tuple[str, str]] = []

    def add(name: str, value: str) -> None:
        console.print(f"  {name}: [bold]{value}[/]")
        out.append((name, value))

    console.print("Limits: redis-benchmark GET, the read in-process ...")
    for clients in (1, 50):
        rps, p50, p99 = redis_benchmark(stack.profile.redis_port, size, clients)
        add(f"limit: redis-benchmark GET {size} B, {clients} client(s)",
            f"{rps:,.0f} GETs/s, p50 {p50:.3f} / p99 {p99:.3f} ms")
    found, alone = asyncio.run(in_process(stack.redis_url, ids, min(20, seconds), as_of))
    add("limit: in-process find + scores + JSON (one loop, one core)",
        f"p50 {pct(found.latencies_ms, .5):.3f} / p99 {pct(found.latencies_ms, .99):.3f} ms, "
        f"{found.rate:,.0f} reads/s")
    add("limit: in-process scores + JSON alone (the compute)",
        f"p50 {pct(alone.latencies_ms, .5):.3f} / p99 {pct(alone.latencies_ms, .99):.3f} ms, "
        f"{alone.rate:,.0f} /s")

    stack.start_services(("scoring",), {"RAPPORT_LOG_LEVEL": "WARNING",
                                        "RAPPORT_REFIT_FIRST_DELAY_S": "86400"})
    try:
        stack.wait_services(services=("scoring",))
        url, pid = stack.url("scoring"), stack.pid("scoring")
        asyncio.run(open_loop(url, ids, 200, 3))  # warm-up
        for rate in rates:
            console.print(f"Open loop (httpx): {rate:,.0f} reads/s for {seconds} s ...")
            load = measured(pid, lambda r=rate: open_loop(url, ids, r, seconds))
            p99 = pct(load.latencies_ms, .99)
            add(f"scores API, open loop at {rate:,.0f}/s (httpx, one process)",
                load.describe())
            add("  CPU per read; the client fell behind its schedule by at most",
                f"{load.cpu()}; {load.late_ms:,.0f} ms")
            if rate == SCORE_GOAL_RATE:
                add(f"  goal: p99 < {SCORE_GOAL_P99_MS:.0f} ms at {SCORE_GOAL_RATE:,.0f}/s",
                    f"{_verdict(p99 < SCORE_GOAL_P99_MS and load.errors == 0)} "
                    f"(p99 {p99:,.2f} ms, {load.rate:,.0f}/s answered)")
        for concurrency in (1, 16):
            console.print(f"Saturation (httpx): {concurrency} in flight for {seconds} s ...")
            load = measured(pid, lambda c=concurrency: closed_loop(url, ids, c, seconds))
            add(f"scores API, {concurrency} in flight (httpx)", load.describe())
            add("  CPU per read", load.cpu())
        console.print(f"Saturation (wrk): 16 connections for {seconds} s ...")
        result, cpu = wrk_saturation(url, run, len(ids), seconds, 16, pid)
        add("scores API, wrk 16 connections (the service's own ceiling)",
            f"{result.requests_per_s:,.0f} reads/s, p50 {result.p50_ms:.2f} / "
            f"p99 {result.p99_ms:.2f} ms, non-2xx {result.non_2xx}")
        add("  service CPU per read; ceiling / in-process find + scores",
            f"{cpu:.2f} ms; {result.requests_per_s / max(1e-9, found.rate):.0%}")
        add("scoring service RSS after the reads", f"{_rss_mb(pid):,.0f} MB")
    finally:
        stack.stop_service("scoring")
    return out


def _rss_mb(pid: int | None) -> float:
    if pid is None:
        return float("nan")
    try:
        status = open(f"/proc/{pid}/status").read()
    except FileNotFoundError:
        return float("nan")
    found = re.search(r"VmRSS:\s+(\d+)", status)
    return int(found.group(1)) / 1024 if found else float("nan")


def refit_rows(stack: Stack, customers: int, as_of: datetime) -> list[tuple[str, str]]:
    result = refit(stack.redis_url, as_of)
    sample = min(customers, 100_000)
    full_rate = asyncio.run(full_gather_rate(stack.redis_url, as_of, sample))
    model, diag = result["model"], result["model"]["diagnostics"]
    gather = diag.get("gather_s", float("nan"))
    bg_s = diag.get("bgnbd", {}).get("duration_s", float("nan"))
    gg_s = diag.get("gamma_gamma", {}).get("duration_s", float("nan"))
    total = result["wall_s"]
    bg, gg = model["bgnbd"], model["gamma_gamma"]
    t = TRUTH
    return [
        (f"refit on {model['customers']:,} customers ({model['repeat_buyers']:,} repeat "
         "buyers): total", f"{total:,.1f} s; goal < {REFIT_GOAL_S:.0f} s "
                          f"{_verdict(total < REFIT_GOAL_S)}"),
        ("  gather (scan every profile) / BG/NBD fit / Gamma-Gamma fit / the rest "
         "(summaries to arrays, model stored)",
         f"{gather:,.1f} / {bg_s:,.1f} / {gg_s:,.1f} / "
         f"{total - gather - bg_s - gg_s:,.1f} s"),
        ("  gather rate: lean scan (whole profiles validated, as before: "
         f"first {sample:,})", f"{customers / max(1e-9, gather):,.0f} profiles/s "
                               f"({full_rate:,.0f} profiles/s, {customers / full_rate:,.0f} s "
                               f"for {customers:,})"),
        ("  peak RSS of the fitting process (before the fit)",
         f"{result['rss_peak_mb']:,.0f} MB ({result['rss_before_mb']:,.0f} MB)"),
        ("  BG/NBD fit: distinct rows, iterations",
         f"{diag.get('bgnbd', {}).get('rows', '?')}, "
         f"{diag.get('bgnbd', {}).get('iterations', '?')}"),
        ("  BG/NBD r, alpha, a, b: fitted (generating)",
         f"{bg['r']:.3f}, {bg['alpha']:.3f}, {bg['a']:.3f}, {bg['b']:.3f} "
         f"({t.r}, {t.alpha}, {t.a}, {t.b})"),
        ("  Gamma-Gamma p, q, gamma: fitted (generating)",
         f"{gg['p']:.3f}, {gg['q']:.3f}, {gg['gamma']:.3f} ({t.p}, {t.q}, {t.gamma})"),
    ]

