"""``rapport bench ingest``: ingest throughput and latency against the physical
limit measured in the same run, and memory under sustained load.

- the limit: Kafka's own ``ProducerPerformance`` sending the same touchpoint
  payloads with the same producer settings (acks=all, idempotence, lz4, linger);
- ingest: ``wrk`` posting ``/v1/batch`` with 100 realistic events per request,
  every message id unique (so dedup never short-cuts the work);
- memory: the ingest processes' resident set size sampled during a sustained run.

It prints figures; it asserts nothing.
"""

from __future__ import annotations

import asyncio
import base64
import re
import shutil
import subprocess
import tempfile
import time
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

import orjson
from rich.console import Console
from rich.progress import Progress
from rich.table import Table

from rapport.shared import topics
from rapport.shared.bench_figures import Figures
from rapport.shared.kafka import ensure_topics
from rapport.shared.localstack import Stack
from rapport.shared.simulate import Population

from .domain import normalize
from .settings import DEV_WRITE_KEYS

EVENTS_PER_REQUEST = 100
console = Console()


@dataclass
class WrkResult:
    requests_per_s: float
    p50_ms: float
    p99_ms: float
    non_2xx: int
    errors: str


def sample_events(n: int = EVENTS_PER_REQUEST, target_bytes: int = 500) -> list[dict]:
    """Realistic Segment messages of about ``target_bytes`` each (campaign context as
    SDKs send it), with ``__N__`` where each request puts a unique prefix."""
    population = Population(customers=3000, seed=11)
    events = population.batch(n, datetime(2026, 11, 23, 12, 0, tzinfo=UTC))
    for i, event in enumerate(events):
        event["messageId"] = f"__N__{i}"
        event["context"].update({"library": {"name": "analytics-python", "version": "2.3.4"},
                                 "ip": "203.0.113.7", "locale": "en-GB"})
        size = len(orjson.dumps(event))
        if size < target_bytes:
            event["context"]["page"] = {"path": "/p/" + "x" * (target_bytes - size - 25)}
    return events


def touchpoint_payloads(events: list[dict]) -> list[bytes]:
    """What ingest publishes for these events: the records ProducerPerformance sends."""
    now = datetime.now(UTC)
    out = []
    for i, event in enumerate(events):
        tp = normalize({**event, "messageId": f"perf-{i}"}, index=i,
                       source=DEV_WRITE_KEYS["dev-write-key"], received_at=now)
        out.append(tp.to_bytes())  # type: ignore[union-attr]
    return out


def wrk_script(events: list[dict], write_key: str, run_id: str) -> str:
    body = orjson.dumps({"batch": events}).decode()
    auth = base64.b64encode(f"{write_key}:".encode()).decode()
    return f"""
local template = [==[{body}]==]
local counter = 0
local threads = 0
function setup(thread)
  threads = threads + 1
  thread:set("tid", "{run_id}-" .. threads)
end
request = function()
  counter = counter + 1
  local body = template:gsub("__N__", tid .. "-" .. counter .. "-")
  return wrk.format("POST", "/v1/batch", {{
    ["Content-Type"] = "application/json",
    ["Authorization"] = "Basic {auth}"}}, body)
end
"""


def _ms(value: str) -> float:
    number, unit = re.match(r"([\d.]+)(\w+)", value).groups()  # type: ignore[union-attr]
    return float(number) * {"us": 0.001, "ms": 1.0, "s": 1000.0, "m": 60_000.0}[unit]


def run_wrk(url: str, script: Path, *, connections: int, seconds: int,
            threads: int = 2) -> WrkResult:
    out = subprocess.run(["wrk", "-t", str(threads), "-c", str(connections), "-d", f"{seconds}s",
                          "--latency", "--timeout", "10s", "-s", str(script), url],
                         capture_output=True, text=True, check=True).stdout
    rps = float(re.search(r"Requests/sec:\s+([\d.]+)", out).group(1))  # type: ignore[union-attr]
    p50 = _ms(re.search(r"\s50%\s+(\S+)", out).group(1))  # type: ignore[union-attr]
    p99 = _ms(re.search(r"\s99%\s+(\S+)", out).group(1))  # type: ignore[union-attr]
    non2xx = re.search(r"Non-2xx or 3xx responses: (\d+)", out)
    errors = re.search(r"Socket errors: (.*)", out)
    return WrkResult(rps, p50, p99, int(non2xx.group(1)) if non2xx else 0,
                     errors.group(1) if errors else "none")


def producer_perf(stack: Stack, payload_file: Path,
                  records: int) -> tuple[float, float, float | None, float | None]:
    """(records/s, MB/s, p50 ms, p99 ms) of Kafka's ProducerPerformance with ingest's
    producer settings (its latency is send to ack, per record)."""
    asyncio.run(ensure_topics(stack.kafka_bootstrap, [topics.PRODUCER_PERF]))
    out = subprocess.run(stack.java(
        "org.apache.kafka.tools.ProducerPerformance", "--topic", topics.PRODUCER_PERF.name,
        "--num-records", str(records), "--throughput", "-1", "--payload-file", str(payload_file),
        "--producer-props", f"bootstrap.servers={stack.kafka_bootstrap}", "acks=all",
        "enable.idempotence=true", "compression.type=lz4", "linger.ms=5",
        "batch.size=262144", heap="512m"), capture_output=True, text=True, check=True).stdout
    last = [line for line in out.splitlines() if "records sent" in line][-1]
    rate = re.search(r"([\d.]+) records/sec \(([\d.]+) MB/sec\)", last)
    p50, p99 = (re.search(rf"([\d.]+) ms {q}th", last) for q in ("50", "99"))
    return (float(rate.group(1)), float(rate.group(2)),  # type: ignore[union-attr]
            float(p50.group(1)) if p50 else None, float(p99.group(1)) if p99 else None)


def tree_rss_mb(pid: int) -> float:
    """Resident memory of a process and its descendants, from /proc."""
    total, stack = 0, [pid]
    while stack:
        p = stack.pop()
        try:
            status = Path(f"/proc/{p}/status").read_text()
            total += int(re.search(r"VmRSS:\s+(\d+)", status).group(1))  # type: ignore[union-attr]
            for task in Path(f"/proc/{p}/task").iterdir():
                stack.extend(int(c) for c in (task / "children").read_text().split())
        except (FileNotFoundError, ProcessLookupError, AttributeError):
            continue
    return total / 1024


def ensure_wrk() -> None:
    if shutil.which("wrk"):
        return
    console.print("Installing wrk from Debian's packages ...")
    subprocess.run(["apt-get", "install", "-y", "-qq", "wrk"], check=True,
                   stdout=subprocess.DEVNULL)


def main(*, workers: int, connections: int, seconds: int, sustain: int,
         perf_records: int) -> None:
    ensure_wrk()
    stack = Stack("bench", say=lambda m: console.print(f"[dim]{m}[/]"))
    figures = Figures("ingest", stack.root)
    stack.wipe()
    try:
        stack.up(services=False)
        events = sample_events()
        sizes = [len(orjson.dumps(e)) for e in events]
        payloads = touchpoint_payloads(events)
        workdir = Path(tempfile.mkdtemp(prefix="rapport-bench-"))
        payload_file = workdir / "touchpoints.txt"
        payload_file.write_bytes(b"\n".join(payloads))
        script = workdir / "batch.lua"
        script.write_text(wrk_script(events, "dev-write-key", uuid.uuid4().hex[:8]))

        console.print(f"Kafka ProducerPerformance: {perf_records:,} touchpoint records ...")
        perf_rate, perf_mb, perf_p50, perf_p99 = producer_perf(stack, payload_file, perf_records)
        figures.update(perf_records_per_s=perf_rate, perf_p50_ms=perf_p50,
                       perf_p99_ms=perf_p99)

        stack.start_services(("ingest",), {"RAPPORT_INGEST_WORKERS": str(workers),
                                           "RAPPORT_LOG_LEVEL": "WARNING"})
        stack.wait_services(services=("ingest",))
        url = stack.url("ingest")
        pid = stack.pid("ingest")
        assert pid is not None
        before = asyncio.run(_published(stack))
        run_wrk(url, script, connections=connections, seconds=5)  # warm-up
        console.print(f"wrk: {seconds}s, {connections} connections, {workers} ingest workers ...")
        peak = run_wrk(url, script, connections=connections, seconds=seconds)
        figures.update(events_per_s=peak.requests_per_s * EVENTS_PER_REQUEST,
                       p50_ms=peak.p50_ms, p99_ms=peak.p99_ms, non_2xx=peak.non_2xx,
                       workers=workers, connections=connections)
        light = run_wrk(url, script, connections=max(1, connections // 8), seconds=seconds)
        rss_start = tree_rss_mb(pid)
        samples = _sustain(url, script, pid, connections=max(1, connections // 2),
                           seconds=sustain)
        time.sleep(2)
        landed = asyncio.run(_published(stack)) - before

        table = Table(title="ingest benchmark", show_lines=False)
        table.add_column("measure")
        table.add_column("value", justify="right")
        table.add_row("event size (Segment JSON, mean)", f"{sum(sizes) / len(sizes):,.0f} B")
        table.add_row("touchpoint record size (mean)",
                      f"{sum(map(len, payloads)) / len(payloads):,.0f} B")
        table.add_row("Kafka ProducerPerformance (limit)",
                      f"{perf_rate:,.0f} records/s ({perf_mb:.1f} MB/s)")
        if perf_p50 is not None and perf_p99 is not None:
            table.add_row("Kafka ProducerPerformance: latency p50 / p99",
                          f"{perf_p50:.0f} / {perf_p99:.0f} ms")
        for name, r in (("ingest at saturation", peak), ("ingest, light load", light)):
            eps = r.requests_per_s * EVENTS_PER_REQUEST
            table.add_row(f"{name}: events/s", f"{eps:,.0f}")
            table.add_row(f"{name}: latency p50 / p99", f"{r.p50_ms:.1f} / {r.p99_ms:.1f} ms")
            table.add_row(f"{name}: non-2xx, socket errors", f"{r.non_2xx}, {r.errors}")
        table.add_row("ingest / Kafka limit (saturation)",
                      f"{peak.requests_per_s * EVENTS_PER_REQUEST / perf_rate:.1%}")
        table.add_row("records that reached Kafka", f"{landed:,}")
        if samples:
            table.add_row(f"ingest RSS over {sustain}s sustained (start → end, max)",
                          f"{rss_start:.0f} → {samples[-1][1]:.0f} MB, "
                          f"max {max(s for _, s in samples):.0f} MB")
        console.print(table)
        for t, mb in samples:
            console.print(f"  rss t={t:4.0f}s {mb:7.1f} MB")
        shutil.rmtree(workdir, ignore_errors=True)
    finally:
        stack.down()


def _sustain(url: str, script: Path, pid: int, *, connections: int,
             seconds: int) -> list[tuple[float, float]]:
    if seconds <= 0:
        return []
    proc = subprocess.Popen(["wrk", "-t", "2", "-c", str(connections), "-d", f"{seconds}s",
                             "--timeout", "10s", "-s", str(script), url],
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    samples: list[tuple[float, float]] = []
    start = time.monotonic()
    with Progress(console=console) as bar:
        task = bar.add_task(f"sustained load ({seconds}s)", total=seconds)
        while proc.poll() is None:
            elapsed = time.monotonic() - start
            samples.append((elapsed, tree_rss_mb(pid)))
            bar.update(task, completed=min(elapsed, seconds))
            time.sleep(min(15, max(1, seconds / 20)))
    return samples


async def _published(stack: Stack) -> int:
    from aiokafka import AIOKafkaConsumer, TopicPartition

    consumer = AIOKafkaConsumer(bootstrap_servers=stack.kafka_bootstrap)
    await consumer.start()
    try:
        parts = [TopicPartition(topics.TOUCHPOINTS.name, p)
                 for p in range(topics.TOUCHPOINTS.partitions)]
        return sum((await consumer.end_offsets(parts)).values())
    finally:
        await consumer.stop()
