"""Profile worker processes for ``rapport bench profile``: start them on a pre-filled
topic, time how fast they fold it, and demand's cost to that folding (the same
events folded with demand counting on and off, back to back)."""

from __future__ import annotations

import asyncio
import os
import signal
import statistics
import subprocess
import sys
import time
import uuid
from pathlib import Path

import httpx
from rich.console import Console
from rich.progress import Progress

from rapport.shared import redis_store
from rapport.shared.kafka import ensure_topics
from rapport.shared.topics import TopicSpec, facts_beside

console = Console()


def metric(url: str, name: str, labels: str) -> float:
    try:
        text = httpx.get(f"{url}/metrics", timeout=5).text
    except httpx.HTTPError:
        return 0.0
    total = 0.0
    for line in text.splitlines():
        if line.startswith(name + "{") and labels in line:
            total += float(line.rsplit(" ", 1)[1])
    return total


class Workers:
    """``python -m rapport.profile`` processes of one consumer group, on ports from
    ``base_port`` (the bench stack's, so they move with ``RAPPORT_STACK_PORT_OFFSET``)."""

    def __init__(self, settings: dict[str, str], logs: Path, base_port: int) -> None:
        self.settings, self.logs, self.base_port = settings, logs, base_port
        self.procs: list[tuple[subprocess.Popen, str]] = []

    def start(self, n: int) -> None:
        for _ in range(n):
            port = self.base_port + len(self.procs)
            env = {**os.environ, **self.settings, "RAPPORT_PROFILE_PORT": str(port),
                   "RAPPORT_LOG_LEVEL": "WARNING",
                   "RAPPORT_PROFILE_DATA_DIR": str(self.logs / f"w{len(self.procs)}")}
            log = open(self.logs / f"profile-w{len(self.procs)}.log", "ab")
            proc = subprocess.Popen([sys.executable, "-m", "rapport.profile"], env=env,
                                    stdout=log, stderr=subprocess.STDOUT)
            self.procs.append((proc, f"http://127.0.0.1:{port}"))

    def applied(self) -> float:
        return sum(metric(url, "rapport_profile_records_total", 'outcome="applied",stage="fold"')
                   for _, url in self.procs)

    def stop(self) -> None:
        for proc, _ in self.procs:
            proc.terminate()
        for proc, _ in self.procs:
            try:
                proc.wait(60)
            except subprocess.TimeoutExpired:
                proc.kill()
        self.procs.clear()


def fold_rate(workers: Workers, total: int, what: str) -> tuple[float, float]:
    """(events/s from first to last applied, seconds in all) while the workers catch up."""
    start = time.monotonic()
    first_at = last_at = None
    with Progress(console=console, transient=True) as bar:
        task = bar.add_task(what, total=total)
        while True:
            applied = workers.applied()
            now = time.monotonic()
            if applied and first_at is None:
                first_at, first_n = now, applied
            bar.update(task, completed=applied)
            if applied >= total:
                last_at = now
                break
            if now - start > 3600:
                raise RuntimeError(f"{what}: only {applied:,.0f}/{total:,} after an hour")
            time.sleep(0.25)
    assert first_at is not None
    return (total - first_n) / max(1e-9, last_at - first_at), last_at - start


def flush(redis_url: str) -> None:
    """Empty Redis and zero its command statistics."""
    async def go() -> None:
        redis = redis_store.connect(redis_url)
        try:
            await redis.flushall()
            await redis.config_resetstat()
        finally:
            await redis.aclose()

    asyncio.run(go())


def redis_work(redis_url: str) -> tuple[float, int]:
    """(CPU seconds Redis has used, commands it ran since the last ``flush``)."""
    async def go() -> tuple[float, int]:
        redis = redis_store.connect(redis_url)
        try:
            cpu, stats = await redis.info("cpu"), await redis.info("commandstats")
            calls = sum(int(v["calls"]) for k, v in stats.items() if k != "cmdstat_info")
            return float(cpu["used_cpu_user"]) + float(cpu["used_cpu_sys"]), calls
        finally:
            await redis.aclose()

    return asyncio.run(go())


def demand_cost(settings: dict[str, str], *, source: str, total: int, logs: Path,
                base_port: int, redis_url: str, rounds: int = 2,
                pyspy: str | None = None) -> dict[str, object]:
    """One worker folds the same ``source`` topic with demand on and off, in the order
    on, off, off, on, ... (``rounds`` of each; drift cancels), each run from an empty
    Redis, its own group and resolved topic. ``pyspy``: py-spy's path, to record the
    first run of each (collapsed stacks under ``logs``)."""
    order = [on for r in range(rounds) for on in ((True, False) if r % 2 == 0
                                                  else (False, True))]
    runs: dict[bool, list[float]] = {True: [], False: []}
    redis: dict[bool, list[tuple[float, float]]] = {True: [], False: []}
    stacks: dict[str, str] = {}
    for on in order:
        run = uuid.uuid4().hex[:6]
        resolved = TopicSpec(f"bench.resolved.{run}", partitions=8)
        asyncio.run(ensure_topics(settings["RAPPORT_KAFKA_BOOTSTRAP"],
                                  [resolved, facts_beside(resolved)]))
        flush(redis_url)
        cpu0, _ = redis_work(redis_url)
        workers = Workers({**settings, "RAPPORT_TOUCHPOINTS_TOPIC": source,
                           "RAPPORT_RESOLVED_TOPIC": resolved.name,
                           "RAPPORT_DEMAND_FACTS_TOPIC": facts_beside(resolved).name,
                           "RAPPORT_PROFILE_GROUP_ID": f"bench-demand-{run}",
                           "RAPPORT_DEMAND_ENABLED": str(on).lower()}, logs, base_port)
        workers.start(1)
        spy = None
        name = "on" if on else "off"
        if pyspy and name not in stacks:
            stacks[name] = str(logs / f"pyspy-demand-{name}.txt")
            spy = subprocess.Popen([pyspy, "record", "--pid", str(workers.procs[0][0].pid),
                                    "--rate", "200", "--format", "raw", "--nonblocking",
                                    "--output", stacks[name]],
                                   stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        rate, _ = fold_rate(workers, total, f"1 worker, demand {name}")
        if spy is not None:
            spy.send_signal(signal.SIGINT)  # py-spy writes its file on interrupt
            spy.wait(60)
        cpu1, calls = redis_work(redis_url)
        workers.stop()
        runs[on].append(rate)
        redis[on].append(((cpu1 - cpu0) * 1e6 / total, calls / total))
        console.print(f"  demand {name}: {rate:,.0f} events/s; Redis "
                      f"{redis[on][-1][0]:,.0f} µs CPU, {redis[on][-1][1]:.2f} commands "
                      "per event")
    on_rate, off_rate = statistics.mean(runs[True]), statistics.mean(runs[False])
    return {"demand_on_per_s": on_rate, "demand_off_per_s": off_rate,
            "demand_cost": 1 - on_rate / off_rate, "demand_runs_on": runs[True],
            "demand_runs_off": runs[False], "demand_pyspy": stacks,
            **{f"demand_{'on' if on else 'off'}_redis_{what}_per_event":
               statistics.mean(r[i] for r in redis[on])
               for on in (True, False) for i, what in enumerate(("cpu_us", "commands"))}}
