"""How ``rapport bench scoring`` drives score reads and measures their limits: open- and
closed-loop HTTP clients (latency counted from when each request was due), ``wrk`` at
saturation, a bare in-process read loop, ``redis-benchmark`` of a profile-sized value,
and the CPU each side spent (from /proc). Figures only; nothing here asserts."""

from __future__ import annotations

import asyncio
import os
import random
import shutil
import subprocess
import tempfile
import time
from collections.abc import Awaitable, Callable, Iterator
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

import httpx
from rich.console import Console

from rapport.ingest.bench import WrkResult, ensure_wrk, run_wrk
from rapport.shared import layout, redis_store
from rapport.shared.customers import CustomerReadModel

console = Console()
AGENT = {"Authorization": "Bearer dev-agent"}


def pct(values: list[float], q: float) -> float:
    if not values:
        return float("nan")
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


@dataclass
class Load:
    latencies_ms: list[float]
    errors: int
    seconds: float
    late_ms: float = 0.0
    """Open loop: how far behind its schedule the client fell at worst (its own limit)."""
    client_cpu_ms: float = float("nan")
    """CPU time the client process spent per answered read."""
    service_cpu_ms: float = float("nan")
    """CPU time the scoring service spent per answered read (from /proc)."""

    @property
    def rate(self) -> float:
        return len(self.latencies_ms) / self.seconds if self.seconds else 0.0

    def describe(self) -> str:
        return (f"p50 {pct(self.latencies_ms, .5):.2f} / p99 {pct(self.latencies_ms, .99):.2f}"
                f" / max {max(self.latencies_ms, default=float('nan')):.1f} ms, "
                f"{self.rate:,.0f} reads/s answered, {self.errors:,} errors or not sent")

    def cpu(self) -> str:
        return (f"service {self.service_cpu_ms:.2f} ms, client {self.client_cpu_ms:.2f} ms "
                f"per read")


def cpu_seconds(pid: int | None) -> float:
    """User + system CPU time of a process so far (NaN when it is gone)."""
    try:
        with open(f"/proc/{pid}/stat") as f:
            fields = f.read().rsplit(")", 1)[1].split()
    except (OSError, TypeError):
        return float("nan")
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def measured(pid: int | None, run: Callable[[], Awaitable[Load]]) -> Load:
    """Run a load and charge the CPU it took, in this process and in the service."""
    service, client = cpu_seconds(pid), time.process_time()
    load = asyncio.run(run())
    answered = max(1, len(load.latencies_ms))
    load.client_cpu_ms = (time.process_time() - client) / answered * 1000
    load.service_cpu_ms = (cpu_seconds(pid) - service) / answered * 1000
    return load


def _score_paths(ids: list[str], n: int, seed: int) -> Iterator[str]:
    rng = random.Random(seed)
    for _ in range(n):
        yield f"/v1/customers/{rng.choice(ids)}/scores"


MAX_IN_FLIGHT = 256


async def open_loop(url: str, ids: list[str], rate: float, seconds: float) -> Load:
    """Requests due at a fixed rate whatever the answers do; latency from when due (so a
    client that falls behind, or a queue, counts against the latency). A read due while
    :data:`MAX_IN_FLIGHT` are unanswered is not sent and counts as an error (past that,
    a queue in the client only measures the client), as does one unanswered in 10 s."""
    n = int(rate * seconds)
    paths = _score_paths(ids, n, seed=int(rate))
    latencies: list[float] = []
    errors = 0
    late = 0.0
    limits = httpx.Limits(max_connections=MAX_IN_FLIGHT,
                          max_keepalive_connections=MAX_IN_FLIGHT)
    async with httpx.AsyncClient(base_url=url, headers=AGENT, timeout=10,
                                 limits=limits) as http:
        async def one(path: str, due: float) -> None:
            nonlocal errors
            try:
                r = await http.get(path)
                ok = r.status_code == 200
            except httpx.HTTPError:
                ok = False
            if ok:
                latencies.append((time.perf_counter() - due) * 1000)
            else:
                errors += 1

        pending: set[asyncio.Task] = set()
        start = time.perf_counter() + 0.05
        for i, path in enumerate(paths):
            due = start + i / rate
            wait = due - time.perf_counter()
            if wait > 0:
                await asyncio.sleep(wait)
            else:  # behind: the client is the limit (let what was sent get answered)
                late = max(late, -wait * 1000)
                if i % 32 == 0:
                    await asyncio.sleep(0)
            if len(pending) >= MAX_IN_FLIGHT:
                errors += 1
                continue
            task = asyncio.create_task(one(path, due))
            pending.add(task)
            task.add_done_callback(pending.discard)
        await asyncio.gather(*pending)
    return Load(latencies, errors, time.perf_counter() - start, late)


async def closed_loop(url: str, ids: list[str], concurrency: int, seconds: float) -> Load:
    """``concurrency`` requests always in flight: the throughput at saturation."""
    latencies: list[float] = []
    errors = 0
    end = time.perf_counter() + seconds
    limits = httpx.Limits(max_connections=concurrency, max_keepalive_connections=concurrency)
    async with httpx.AsyncClient(base_url=url, headers=AGENT, timeout=10,
                                 limits=limits) as http:
        async def worker(k: int) -> None:
            nonlocal errors
            paths = _score_paths(ids, 10**9, seed=k)
            while (now := time.perf_counter()) < end:
                try:
                    r = await http.get(next(paths))
                    ok = r.status_code == 200
                except httpx.HTTPError:
                    ok = False
                if ok:
                    latencies.append((time.perf_counter() - now) * 1000)
                else:
                    errors += 1

        start = time.perf_counter()
        await asyncio.gather(*(worker(k) for k in range(concurrency)))
    return Load(latencies, errors, time.perf_counter() - start)


_WRK_SCRIPT = """
local n = {n}
math.randomseed({seed})
request = function()
  local id = string.format("{run}-c%07d", math.random(0, n - 1))
  return wrk.format("GET", "/v1/customers/" .. id .. "/scores",
                    {{["Authorization"] = "Bearer dev-agent"}})
end
"""


def wrk_saturation(url: str, run: str, n: int, seconds: int, connections: int,
                   pid: int | None) -> tuple[WrkResult, float]:
    """``wrk`` (C, a few microseconds per request) at saturation: what the service does
    when the client costs next to nothing; (result, service CPU ms per read)."""
    ensure_wrk()
    with tempfile.NamedTemporaryFile("w", suffix=".lua", delete=False) as script:
        script.write(_WRK_SCRIPT.format(n=n, seed=11, run=run))
    try:
        before = cpu_seconds(pid)
        result = run_wrk(url, Path(script.name), connections=connections, seconds=seconds,
                         threads=1)
        cpu = (cpu_seconds(pid) - before) / max(1.0, result.requests_per_s * seconds) * 1000
        return result, cpu
    finally:
        os.unlink(script.name)


async def in_process(redis_url: str, ids: list[str], seconds: float,
                     as_of: datetime) -> tuple[Load, Load]:
    """(find + scores, scores alone) in a bare loop: the read without HTTP."""
    redis = redis_store.connect(redis_url)
    reader = CustomerReadModel(redis)
    rng = random.Random(3)
    try:
        await reader.scores(await reader.find(ids[0]), as_of)  # warm the caches
        both: list[float] = []
        began = time.perf_counter()
        while time.perf_counter() - began < seconds / 2:
            t0 = time.perf_counter()
            profile = await reader.find(rng.choice(ids))
            assert profile is not None
            (await reader.scores(profile, as_of)).model_dump_json()
            both.append((time.perf_counter() - t0) * 1000)
        found = Load(both, 0, time.perf_counter() - began)
        profiles = [await reader.find(rng.choice(ids)) for _ in range(2000)]
        alone: list[float] = []
        began = time.perf_counter()
        while time.perf_counter() - began < seconds / 2:
            profile = profiles[len(alone) % len(profiles)]
            t0 = time.perf_counter()
            (await reader.scores(profile, as_of)).model_dump_json()  # type: ignore[arg-type]
            alone.append((time.perf_counter() - t0) * 1000)
        return found, Load(alone, 0, time.perf_counter() - began)
    finally:
        await redis.aclose()


def ensure_redis_benchmark() -> str:
    found = shutil.which("redis-benchmark")
    if found:
        return found
    console.print("Installing redis-tools from Debian's packages ...")
    subprocess.run(["apt-get", "install", "-y", "-qq", "redis-tools"], check=True,
                   stdout=subprocess.DEVNULL)
    return "redis-benchmark"


def redis_benchmark(port: int, size: int, clients: int, requests: int = 200_000,
                    ) -> tuple[float, float, float]:
    """(GETs/s, p50 ms, p99 ms) of ``redis-benchmark`` on a value of ``size`` bytes."""
    out = subprocess.run([ensure_redis_benchmark(), "-h", "127.0.0.1", "-p", str(port),
                          "-t", "get", "-d", str(size), "-n", str(requests), "-c", str(clients),
                          "-r", "100000", "--csv"],
                         capture_output=True, text=True, check=True).stdout
    rows = [line.replace('"', "").split(",") for line in out.splitlines() if line.strip()]
    header = rows[0]
    get = next(r for r in rows[1:] if r[0].startswith("GET"))
    row = dict(zip(header, get, strict=False))
    return float(row["rps"]), float(row["p50_latency_ms"]), float(row["p99_latency_ms"])


async def profile_size(redis_url: str, ids: list[str]) -> tuple[float, float]:
    """(stored bytes, Redis MEMORY USAGE) per profile, mean over a sample."""
    redis = redis_store.connect(redis_url)
    try:
        sample = ids[:: max(1, len(ids) // 500)]
        laid = await layout.current(redis)
        raws = await redis.mget([laid.profile(c) for c in sample])
        usage = [await redis.memory_usage(laid.profile(c)) or 0 for c in sample]
        return sum(len(r) for r in raws if r) / len(sample), sum(usage) / len(sample)
    finally:
        await redis.aclose()


# --- refit ------------------------------------------------------------------------------
