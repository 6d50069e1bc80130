"""``rapport bench next-action``: the decision API's latency at a fixed rate and its
throughput at saturation, against the limits measured in the same run, on the
``bench`` stack (its own Kafka and Redis; the service as its own process).

- the world (:mod:`.bench_data`): a catalog of varied offers, synthetic customers
  stored as the profile service keeps them, a response model trained on synthetic
  outcomes;
- decisions: ``POST /v1/next-best-action`` from a load-generator process of its own
  (:mod:`.bench_load`, keep-alive HTTP/1.1 connections), open loop at Poisson
  arrivals (latency from when each request was due), then closed loop at a fixed
  number in flight; the service's CPU per decision (from /proc), the Redis commands
  per decision (INFO), and its own step timings (``/metrics``);
- the limits: ``redis-benchmark`` GET and EVALSHA (one client: the round trip; 50:
  the rate), and a bare FastAPI/uvicorn "hello" driven the same way: the HTTP floor.

It prints figures; it asserts nothing.
"""

from __future__ import annotations

import os
import subprocess
import uuid
from collections.abc import Callable
from dataclasses import dataclass

import httpx
import redis
from prometheus_client.parser import text_string_to_metric_families
from rich.console import Console
from rich.table import Table

from rapport.scoring.bench_data import as_of_now
from rapport.scoring.bench_reads import cpu_seconds as _own_cpu_seconds
from rapport.scoring.bench_reads import ensure_redis_benchmark
from rapport.shared.layout import ProfileLayout
from rapport.shared.localstack import Stack

from .bench_data import asks, catalog, train_model, write_customers, write_model
from .bench_load import MAX_IN_FLIGHT, Hello, Job, Load, drive

console = Console()
GOAL_P99_MS, GOAL_RATE = 10.0, 500.0
NBA = "/v1/next-best-action"


@dataclass(frozen=True)
class Options:
    offers: int = 200
    customers: int = 20_000
    outcomes: int = 4000
    """Synthetic outcomes the response model is trained on."""
    rate: float = GOAL_RATE
    seconds: float = 20
    warmup: float = 5
    concurrency: int = 8
    redis_requests: int = 100_000
    workers: int = 1
    """The service's worker processes (``RAPPORT_NEXT_ACTION_WORKERS``)."""


Rows = list[tuple[str, str]]


def redis_bench(port: int, clients: int, requests: int, command: list[str]) -> tuple[float,
                                                                                     float]:
    """(requests/s, p50 ms) of ``redis-benchmark`` running ``command``."""
    out = subprocess.run([ensure_redis_benchmark(), "-h", "127.0.0.1", "-p", str(port),
                          "-n", str(requests), "-c", str(clients), "--csv", *command],
                         capture_output=True, text=True, check=True).stdout
    rows = [line.replace('"', "").split(",") for line in out.splitlines() if line.strip()]
    row = dict(zip(rows[0], rows[-1], strict=False))
    return float(row["rps"]), float(row["p50_latency_ms"])


def redis_limits(redis_url: str, port: int, requests: int) -> Rows:
    """GET of a stored profile and EVALSHA of a one-HGET script (what a decision's
    Redis calls are made of), one client and 50."""
    client = redis.Redis.from_url(redis_url)
    try:
        key = next(iter(client.scan_iter(match=ProfileLayout.profile_pattern(), count=100)))
        size = len(client.get(key) or b"")
        sha = client.script_load("return redis.call('HGET', KEYS[1], 'x')")
    finally:
        client.close()
    rows = []
    for name, command in ((f"GET {size} B", ["GET", key.decode()]),
                          ("EVALSHA (HGET)", ["EVALSHA", sha, "1", "bench:h"])):
        one, p50 = redis_bench(port, 1, requests // 4, command)
        many, _ = redis_bench(port, 50, requests, command)
        rows.append((f"limit: redis-benchmark {name}: 1 client (round trip) / 50 clients",
                     f"{one:,.0f}/s, p50 {p50:.3f} ms / {many:,.0f}/s"))
    return rows


def commands_processed(redis_url: str) -> int:
    client = redis.Redis.from_url(redis_url)
    try:
        return int(client.info("stats")["total_commands_processed"])
    finally:
        client.close()


def service_metrics(url: str) -> dict[str, float]:
    """Sums and counts of the decision steps and of the decision route's handling."""
    out: dict[str, float] = {}
    text = httpx.get(f"{url}/metrics", timeout=5).text
    for family in text_string_to_metric_families(text):
        for s in family.samples:
            if s.name.startswith("rapport_decision_step_seconds_") and \
                    s.name.endswith(("_sum", "_count")):
                out[f"{s.labels['step']}{s.name[-4:] if s.name.endswith('_sum') else '_n'}"] \
                    = s.value
            elif s.name.startswith("rapport_http_request_seconds") and \
                    s.labels.get("route") == NBA and s.name.endswith(("_sum", "_count")):
                out["handler" + ("_sum" if s.name.endswith("_sum") else "_n")] = s.value
    return out


def step_means(before: dict[str, float], after: dict[str, float]) -> str:
    parts = []
    for step in ("handler", "customer", "contacts"):
        n = after.get(f"{step}_n", 0) - before.get(f"{step}_n", 0)
        total = after.get(f"{step}_sum", 0) - before.get(f"{step}_sum", 0)
        if n:
            parts.append(f"{step} {total / n * 1000:.2f}")
    return " / ".join(parts) + " ms (mean)"


def describe(load: Load) -> str:
    failed = sum(n for status, n in load.statuses.items() if status != 200)
    unsent = load.errors - failed
    return (f"p50 {load.p(.5):.2f} / p90 {load.p(.9):.2f} / p99 {load.p(.99):.2f} / "
            f"max {load.max_ms:.1f} ms, {load.rate:,.0f}/s answered, {load.errors:,} errors"
            + (f" ({unsent:,} not sent: {MAX_IN_FLIGHT} queued)" if unsent else ""))


def _verdict(ok: bool) -> str:
    return "[green]met[/]" if ok else "[red]missed[/]"


def busy_cores_s() -> float:
    """CPU-seconds the whole machine has spent busy so far (all processes, /proc/stat)."""
    with open("/proc/stat") as f:
        fields = [int(v) for v in f.readline().split()[1:8]]
    idle = fields[3] + fields[4]
    return (sum(fields) - idle) / os.sysconf("SC_CLK_TCK")


@dataclass
class Cost:
    service_ms: float
    """Service CPU per request sent."""
    redis_commands: float
    """Redis commands per request sent."""
    cores: dict[str, float]
    """Cores busy on average during the load: in all, and by whom."""

    def cores_text(self) -> str:
        return ", ".join(f"{k} {v:.2f}" for k, v in self.cores.items())


def cpu_seconds(pid: int | None) -> float:
    """CPU time so far of a process and of its live descendants (a service with several
    worker processes is charged for all of them)."""
    total = _own_cpu_seconds(pid)
    if pid is None or total != total:
        return total
    try:
        with open(f"/proc/{pid}/task/{pid}/children") as f:
            children = [int(c) for c in f.read().split()]
    except OSError:
        return total
    return total + sum(c for c in map(cpu_seconds, children) if c == c)


class Measure:
    """Runs loads against a service, charging its CPU and Redis commands, and saying
    what else kept the machine's cores busy meanwhile."""

    def __init__(self, url: str, pid: int | None, redis_url: str, bodies: list[bytes],
                 others: dict[str, int | None], seed: int = 1) -> None:
        self.url, self.pid, self.redis_url, self.bodies = url, pid, redis_url, bodies
        self.others, self.seed = others, seed

    def run(self, path: str, seconds: float, *, rate: float = 0.0, concurrency: int = 8,
            ) -> tuple[Load, Cost]:
        self.seed += 1
        pids = {"service": self.pid, **self.others}
        cpu = {k: cpu_seconds(p) for k, p in pids.items()}
        commands, busy = commands_processed(self.redis_url), busy_cores_s()
        load = drive(Job(self.url, path, self.bodies, seconds, rate, concurrency, self.seed))
        used = {k: (cpu_seconds(p) - cpu[k]) / load.seconds for k, p in pids.items()}
        used["load generator"] = load.cpu_s / load.seconds
        total = (busy_cores_s() - busy) / load.seconds
        cores = {"all": total, **used,
                 "everything else": total - sum(v for v in used.values() if v == v)}
        sent = max(1, sum(load.statuses.values()))  # not those the client gave up on
        return load, Cost(used["service"] * load.seconds / sent * 1000,
                          (commands_processed(self.redis_url) - commands) / sent, cores)


def run(stack: Stack, opts: Options, *, redis_url: str | None = None,
        hello_port: int | None = None, say: Callable[[str], object] = console.print) -> Rows:
    """The world written into ``redis_url`` (the stack's by default), the service
    started on it and measured, the limits measured; the rows (printed as they come)."""
    import orjson

    redis_url = redis_url or stack.redis_url
    rows: Rows = []

    def add(name: str, value: str) -> None:
        say(f"  {name}: [bold]{value}[/]")
        rows.append((name, value))

    run_id = uuid.uuid4().hex[:6]
    say(f"The world: {opts.customers:,} customers, {opts.offers} offers, a model trained on "
        f"{opts.outcomes:,} outcomes ...")
    write_customers(redis_url, run_id, opts.customers, as_of_now())
    offers = catalog(opts.offers)
    model = train_model([o["offer_id"] for o in offers], opts.outcomes)
    write_model(redis_url, model, {})
    n_bodies = int(max(opts.rate * (opts.seconds + opts.warmup), 1000))
    bodies = [orjson.dumps(b) for b in asks(run_id, opts.customers, n_bodies, seed=9)]

    say("Limits: redis-benchmark GET and EVALSHA ...")
    for row in redis_limits(redis_url, stack.profile.redis_port, opts.redis_requests):
        add(*row)

    stack.start_services(("next-action",), {
        "RAPPORT_REDIS_URL": redis_url, "RAPPORT_LOG_LEVEL": "WARNING",
        "RAPPORT_LEARNER_GROUP_ID": f"rapport-bench-learner-{run_id}",
        "RAPPORT_NEXT_ACTION_WORKERS": str(opts.workers)})
    try:
        stack.wait_services(services=("next-action",))
        url = stack.url("next-action")
        put = httpx.put(f"{url}/v1/offers", json=offers, timeout=30,
                        headers={"Authorization": "Bearer dev-admin"})
        put.raise_for_status()
        infra = {"redis": stack.pid("redis"), "kafka": stack.pid("kafka")}
        m = Measure(url, stack.pid("next-action"), redis_url, bodies, infra)
        say(f"Warm-up: {min(opts.rate, 100):,.0f} decisions/s for {opts.warmup:g} s ...")
        m.run(NBA, opts.warmup, rate=min(opts.rate, 100))
        say(f"Open loop: {opts.rate:,.0f} decisions/s (Poisson) for {opts.seconds:g} s ...")
        before = service_metrics(url)
        load, cost = m.run(NBA, opts.seconds, rate=opts.rate)
        after = service_metrics(url)
        add(f"decisions, open loop at {opts.rate:,.0f}/s", describe(load))
        add("  service CPU / client CPU per decision; Redis commands per decision",
            f"{cost.service_ms:.2f} ms / "
            f"{load.cpu_s / max(1, sum(load.statuses.values())) * 1000:.2f} ms; "
            f"{cost.redis_commands:.1f}")
        add(f"  cores busy (of {os.cpu_count()})", cost.cores_text())
        add("  service-side steps", step_means(before, after))
        add("  the client fell behind its schedule by at most; statuses",
            f"{load.late_ms:,.1f} ms; {dict(sorted(load.statuses.items()))}")
        open_p99 = load.p(.99)
        say(f"Saturation: {opts.concurrency} in flight for {opts.seconds:g} s ...")
        sat, sat_cost = m.run(NBA, opts.seconds, concurrency=opts.concurrency)
        add(f"decisions, {opts.concurrency} in flight (saturation)", describe(sat))
        add("  service CPU per decision; cores busy", f"{sat_cost.service_ms:.2f} ms; "
                                                     f"{sat_cost.cores_text()}")
    finally:
        stack.stop_service("next-action")

    port = hello_port or stack.profile.service_ports["next-action"] + 6
    say(f"The HTTP floor: a bare FastAPI/uvicorn hello on port {port} ...")
    with Hello(port) as hello:
        h = Measure(hello.url, hello.pid, redis_url, bodies, {})
        h.run("/hello", opts.warmup, rate=min(opts.rate, 100))
        floor, floor_cost = h.run("/hello", opts.seconds, rate=opts.rate)
        add(f"floor: hello, open loop at {opts.rate:,.0f}/s", describe(floor))
        add("  hello service CPU per request; cores busy",
            f"{floor_cost.service_ms:.2f} ms; {floor_cost.cores_text()}")
        floor_sat, _ = h.run("/hello", opts.seconds, concurrency=opts.concurrency)
        add(f"floor: hello, {opts.concurrency} in flight", describe(floor_sat))
    add("ratio: decision p99 / floor p99 (open loop)",
        f"{open_p99 / floor.p(.99):.1f}x")
    add("ratio: decision saturation / floor saturation",
        f"{sat.rate / max(1e-9, floor_sat.rate):.0%}")
    add(f"goal: p99 < {GOAL_P99_MS:.0f} ms at {opts.rate:,.0f}/s",
        f"{_verdict(open_p99 < GOAL_P99_MS and load.errors == 0)} (p99 {open_p99:.2f} ms)")
    return rows


def table(rows: Rows, title: str) -> Table:
    t = Table(title=title)
    t.add_column("measure")
    t.add_column("value", justify="right")
    for name, value in rows:
        t.add_row(name, value)
    return t


def main(opts: Options) -> None:
    stack = Stack("bench", say=lambda m: console.print(f"[dim]{m}[/]"))
    stack.wipe()
    try:
        stack.up(services=False)
        rows = run(stack, opts)
    finally:
        stack.down()
    console.print(table(rows, f"next-action benchmark: {opts.offers} offers, "
                              f"{opts.customers:,} customers, limit 3"))
