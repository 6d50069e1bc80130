"""``rapport bench profile``: the profile processors against the limits measured
in the same run, on the ``bench`` stack (its own Kafka and Redis).

- limits: a plain aiokafka ``getmany`` loop over the same touchpoint records,
  decoding them with orjson only, and with the pydantic model the service uses;
  and a faust-streaming agent that only counts them (``take_events`` batches),
  which is what any faust design pays before doing work;
- throughput: one, then two worker processes (``python -m rapport.profile``)
  folding a pre-filled topic: events per second per worker, from the service's
  own counters;
- Redis bytes per typical profile (``MEMORY USAGE`` of every key it owns);
- freshness: ingest and profile running, background load through ingest at a
  steady rate, and probe customers whose touchpoint is timed from ingest's 200
  to the change being visible on ``GET /v1/customers/{id}``;
- scale: N single-touchpoint profiles built, Redis memory, then Redis flushed
  and the same profiles rebuilt with ``rebuild``: its time.

It prints figures; it asserts nothing.
"""

from __future__ import annotations

import asyncio
import os
import random
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path

import faust
import httpx
import orjson
from aiokafka import AIOKafkaConsumer
from rich.console import Console
from rich.progress import Progress
from rich.table import Table

from rapport.shared import keys, layout, redis_store
from rapport.shared.events import Channel, MessageType, Touchpoint
from rapport.shared.kafka import durable_producer, ensure_topics
from rapport.shared.localstack import Stack
from rapport.shared.topics import TopicSpec

from . import bench_stages
from .rebuild import rebuild
from .settings import ProfileSettings

console = Console()
PARTITIONS = 8
AGENT = {"Authorization": "Bearer dev-agent"}


def synthetic(run: str, customers: int, per_customer: int, seed: int = 7) -> list[bytes]:
    """Touchpoint records as ingest writes them: each customer browses anonymously,
    identifies, then views, adds and buys under their user id; shuffled."""
    rng = random.Random(seed)
    now = datetime.now(UTC)
    out: list[tuple[bytes, bytes]] = []
    for c in range(customers):
        user, anon = f"{run}-u{c}", f"{run}-a{c}"
        for k in range(per_customer):
            common = {"message_id": f"{run}-{c}-{k}", "source": "bench",
                      "timestamp": now - timedelta(minutes=rng.randrange(0, 60 * 24 * 60)),
                      "received_at": now, "channel": rng.choice(list(Channel)[:4])}
            if per_customer > 2 and k == 0:
                tp = Touchpoint(type=MessageType.PAGE, anonymous_id=anon, name="Home",
                                properties={"path": "/"}, **common)
            elif per_customer > 2 and k == 1:
                tp = Touchpoint(type=MessageType.IDENTIFY, user_id=user, anonymous_id=anon,
                                traits={"email": f"{user}@example.com", "region": "west",
                                        "plan": "gold"}, **common)
            else:
                event = rng.choice(["Product Viewed", "Product Viewed", "Product Added",
                                    "Order Completed", "Email Opened"])
                props: dict[str, object] = {"category": rng.choice(["shoes", "bags", "hats"]),
                                            "sku": f"sku-{rng.randrange(1000)}"}
                if event == "Order Completed":
                    props |= {"order_id": f"o-{c}-{k}", "total": rng.randrange(500, 20000) / 100}
                tp = Touchpoint(type=MessageType.TRACK, event=event, user_id=user,
                                properties=props, **common)
            out.append((tp.customer_key.encode(), tp.to_bytes()))
    rng.shuffle(out)
    return [b"\0".join(pair) for pair in out]


async def fill(bootstrap: str, topic: str, records: list[bytes]) -> None:
    producer = durable_producer(bootstrap, client_id="bench-fill", linger_ms=50,
                                compression="lz4", max_batch_size=512 * 1024)
    await producer.start()
    try:
        futures = []
        for rec in records:
            key, _, value = rec.partition(b"\0")
            futures.append(await producer.send(topic, value, key=key))
            if len(futures) >= 20_000:
                await asyncio.gather(*futures)
                futures = []
        await asyncio.gather(*futures)
    finally:
        await producer.stop()


async def getmany_limit(bootstrap: str, topic: str, total: int,
                        decode: Callable[[bytes], object]) -> float:
    """Events per second of a bare consumer that only decodes."""
    consumer = AIOKafkaConsumer(topic, bootstrap_servers=bootstrap, group_id=None,
                                auto_offset_reset="earliest", enable_auto_commit=False,
                                max_partition_fetch_bytes=4 * 1024 * 1024)
    await consumer.start()
    try:
        seen, start = 0, time.perf_counter()
        while seen < total:
            for records in (await consumer.getmany(timeout_ms=1000, max_records=5000)).values():
                for r in records:
                    decode(r.value)
                seen += len(records)
        return total / (time.perf_counter() - start)
    finally:
        await consumer.stop()


async def faust_ceiling(bootstrap: str, topic: str, total: int, datadir: Path) -> float:
    """Events per second of a faust-streaming agent that does nothing but count."""
    app = faust.App(f"bench-faust-{uuid.uuid4().hex[:6]}", broker=f"kafka://{bootstrap}",
                    store="memory://", web_enabled=False, topic_allow_declare=False,
                    topic_disable_leader=True, consumer_auto_offset_reset="earliest",
                    autodiscover=False, datadir=str(datadir))
    source = app.topic(topic, key_type=bytes, value_type=bytes, key_serializer="raw",
                       value_serializer="raw")
    state = {"seen": 0, "first": 0.0, "last": 0.0}
    done = asyncio.Event()

    @app.agent(source)
    async def count(stream: faust.StreamT) -> None:
        async for events in stream.take_events(500, within=0.02):
            if not state["seen"]:
                state["first"] = time.perf_counter()
            state["seen"] += len(events)
            state["last"] = time.perf_counter()
            if state["seen"] >= total:
                done.set()

    await app.start()
    try:
        await asyncio.wait_for(done.wait(), timeout=900)
    finally:
        await app.stop()
    return (state["seen"] - 500) / max(1e-9, state["last"] - state["first"])


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
    """``python -m rapport.profile`` processes of one consumer group."""

    def __init__(self, settings: dict[str, str], logs: Path) -> None:
        self.settings, self.logs = settings, logs
        self.procs: list[tuple[subprocess.Popen, str]] = []

    def start(self, n: int) -> None:
        for _ in range(n):
            port = 28100 + len(self.procs)
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


async def redis_footprint(redis_url: str, run: str, sample: int = 500) -> dict[str, float]:
    """Mean bytes per profile of every key the profile service keeps for it."""
    redis = redis_store.connect(redis_url)
    try:
        kinds: dict[str, list[int]] = {"profile": [], "timeline": [], "identifiers": []}
        found = 0
        laid = await layout.current(redis)
        async for key in redis.scan_iter(match=laid.profile_pattern(f"{run}-u*"), count=1000):
            pid = laid.profile_id_of(key)
            kinds["profile"].append(await redis.memory_usage(key) or 0)
            kinds["timeline"].append(await redis.memory_usage(laid.timeline(pid)) or 0)
            idents = [keys.profile_identities(pid), *(
                k.decode() for k in await redis.smembers(keys.profile_identities(pid)))]
            kinds["identifiers"].append(sum([await redis.memory_usage(k) or 0 for k in idents]))
            found += 1
            if found >= sample:
                break
        out = {k: statistics.mean(v) if v else 0.0 for k, v in kinds.items()}
        out["json bytes"] = statistics.mean([
            len(await redis.get(laid.profile(f"{run}-u{i}")) or b"") for i in range(50)])
        return out
    finally:
        await redis.aclose()


async def used_memory(redis_url: str) -> int:
    redis = redis_store.connect(redis_url)
    try:
        return int((await redis.info("memory"))["used_memory"])
    finally:
        await redis.aclose()


async def freshness(stack: Stack, *, rate: float, seconds: float,
                    probes_per_s: float = 10) -> list[float]:
    """ms from ingest's 200 to the probe's touchpoint visible on the profile API."""
    ingest, profile = stack.url("ingest"), stack.url("profile")
    run = uuid.uuid4().hex[:6]
    batch = 50
    background = synthetic(f"{run}bg", customers=5000, per_customer=1)
    bodies = [orjson.loads(r.partition(b"\0")[2]) for r in background]
    latencies: list[float] = []

    def segment(tp: dict, i: int) -> dict:
        return {"type": tp["type"], "userId": tp["user_id"] or f"x{i}",
                "event": tp.get("event") or "Product Viewed", "messageId": f"{run}-bg-{i}",
                "timestamp": tp["timestamp"], "properties": tp["properties"]}

    async with httpx.AsyncClient(timeout=10, limits=httpx.Limits(max_connections=64)) as http:
        async def load() -> None:
            interval, i, nxt = batch / rate, 0, time.monotonic()
            end = nxt + seconds
            pending: set[asyncio.Task] = set()
            while nxt < end:
                msgs = [segment(bodies[(i + j) % len(bodies)], i + j) for j in range(batch)]
                i += batch
                task = asyncio.create_task(http.post(f"{ingest}/v1/batch",
                                                     json={"batch": msgs},
                                                     auth=("dev-write-key", "")))
                pending.add(task)
                task.add_done_callback(pending.discard)
                nxt += interval
                await asyncio.sleep(max(0.0, nxt - time.monotonic()))
            await asyncio.gather(*pending)

        async def probe(n: int) -> None:
            user = f"{run}-probe-{n}"
            resp = await http.post(f"{ingest}/v1/track", auth=("dev-write-key", ""), json={
                "userId": user, "event": "Product Viewed", "messageId": f"{run}-p-{n}",
                "properties": {"category": "shoes"}})
            t0 = time.perf_counter()
            if resp.status_code != 200:
                return
            while (waited := time.perf_counter() - t0) < 60:
                r = await http.get(f"{profile}/v1/customers/{user}", headers=AGENT)
                if r.status_code == 200:
                    latencies.append((time.perf_counter() - t0) * 1000)
                    return
                # Fine-grained while it should be visible, coarser after: polling every
                # 2 ms made the probes themselves the profile service's main load.
                await asyncio.sleep(0.005 if waited < 0.1 else 0.05 if waited < 2 else 0.25)

        async def probes() -> None:
            tasks, n = [], 0
            await asyncio.sleep(min(5.0, seconds / 4))  # into the steady state
            end = time.monotonic() + seconds - min(5.0, seconds / 4)
            while time.monotonic() < end:
                tasks.append(asyncio.create_task(probe(n)))
                n += 1
                await asyncio.sleep(1 / probes_per_s)
            await asyncio.gather(*tasks)

        await asyncio.gather(load(), probes())
    return latencies


async def drained(stack: Stack, timeout: float = 900) -> None:
    """Wait until a touchpoint sent now is visible: the backlog is gone."""
    user = f"drain-{uuid.uuid4().hex[:8]}"
    async with httpx.AsyncClient(timeout=10) as http:
        await http.post(f"{stack.url('ingest')}/v1/track", auth=("dev-write-key", ""),
                        json={"userId": user, "event": "Product Viewed"})
        end = time.monotonic() + timeout
        while time.monotonic() < end:
            r = await http.get(f"{stack.url('profile')}/v1/customers/{user}", headers=AGENT)
            if r.status_code == 200:
                return
            await asyncio.sleep(0.5)


class Rows(list[tuple[str, str]]):
    """Figures, printed as soon as measured (a long run that fails keeps what it got)."""

    def append(self, row: tuple[str, str]) -> None:
        console.print(f"  {row[0]}: [bold]{row[1]}[/]")
        super().append(row)

    def __iadd__(self, rows):
        for row in rows:
            self.append(row)
        return self


def pct(values: list[float], q: float) -> float:
    if not values:
        return float("nan")
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


def main(*, events: int, customers: int, profiles: int, rates: list[float],
         seconds: int) -> None:
    stack = Stack("bench", say=lambda m: console.print(f"[dim]{m}[/]"))
    stack.wipe()
    rows = Rows()
    logs = Path(tempfile.mkdtemp(prefix="rapport-bench-profile-"))
    try:
        stack.up(services=False)
        bootstrap = stack.kafka_bootstrap
        run = uuid.uuid4().hex[:6]
        source = TopicSpec(f"bench.touchpoints.{run}", partitions=PARTITIONS)
        resolved = TopicSpec(f"bench.resolved.{run}", partitions=PARTITIONS)
        asyncio.run(ensure_topics(bootstrap, [source, resolved]))
        console.print(f"Generating {events:,} touchpoints of {customers:,} customers ...")
        records = synthetic(run, customers, max(1, events // customers))
        total = len(records)
        asyncio.run(fill(bootstrap, source.name, records))
        size = statistics.mean(len(r.partition(b"\0")[2]) for r in records[:1000])
        rows.append(("touchpoint record (mean)", f"{size:,.0f} B"))

        console.print("Limits: aiokafka getmany loop, faust agent that only counts ...")
        raw = asyncio.run(getmany_limit(bootstrap, source.name, total, orjson.loads))
        model = asyncio.run(getmany_limit(bootstrap, source.name, total, Touchpoint.from_bytes))
        fst = asyncio.run(faust_ceiling(bootstrap, source.name, total, logs))
        rows += [("limit: aiokafka getmany + orjson decode", f"{raw:,.0f} events/s"),
                 ("limit: aiokafka getmany + pydantic Touchpoint", f"{model:,.0f} events/s"),
                 ("limit: faust take_events(500), count only", f"{fst:,.0f} events/s")]

        settings = {"RAPPORT_KAFKA_BOOTSTRAP": bootstrap, "RAPPORT_REDIS_URL": stack.redis_url,
                    "RAPPORT_DEV_KEYS": "true", "RAPPORT_TOUCHPOINTS_TOPIC": source.name,
                    "RAPPORT_RESOLVED_TOPIC": resolved.name,
                    "RAPPORT_PROFILE_GROUP_ID": f"bench-profile-{run}"}
        workers = Workers(settings, logs)
        workers.start(1)
        one, _ = fold_rate(workers, total, "1 profile worker")
        workers.stop()
        rows.append(("profile: 1 worker, events folded/s", f"{one:,.0f}"))
        rows.append(("profile / getmany+orjson limit", f"{one / raw:.1%}"))
        rows.append(("profile / faust count-only ceiling (stage 1 pays it per event)",
                     f"{one / fst:.1%}"))
        foot = asyncio.run(redis_footprint(stack.redis_url, run))
        per = max(1, events // customers)
        rows.append((f"Redis per profile ({per} touchpoints): profile JSON",
                     f"{foot['profile']:,.0f} B (JSON {foot['json bytes']:,.0f} B)"))
        rows.append(("Redis per profile: timeline", f"{foot['timeline']:,.0f} B"))
        rows.append(("Redis per profile: identifier keys", f"{foot['identifiers']:,.0f} B"))
        every = sum(v for k, v in foot.items() if k != "json bytes")
        rows.append(("Redis per profile: all", f"{every:,.0f} B"))

        two_run = uuid.uuid4().hex[:6]
        source2 = TopicSpec(f"bench.touchpoints.{two_run}", partitions=PARTITIONS)
        resolved2 = TopicSpec(f"bench.resolved.{two_run}", partitions=PARTITIONS)
        asyncio.run(ensure_topics(bootstrap, [source2, resolved2]))
        asyncio.run(fill(bootstrap, source2.name, synthetic(two_run, customers,
                                                            max(1, events // customers))))
        workers = Workers({**settings, "RAPPORT_TOUCHPOINTS_TOPIC": source2.name,
                                  "RAPPORT_RESOLVED_TOPIC": resolved2.name,
                                  "RAPPORT_PROFILE_GROUP_ID": f"bench-profile-{two_run}"}, logs)
        workers.start(2)
        two, _ = fold_rate(workers, total, "2 profile workers")
        workers.stop()
        rows.append(("profile: 2 workers (2 cores), events folded/s", f"{two:,.0f}"))

        rates = [r for r in rates if r > 0]
        if rates and seconds > 0:
            stack.start_services(("ingest", "profile"), {"RAPPORT_LOG_LEVEL": "WARNING",
                                                         "RAPPORT_INGEST_WORKERS": "1"})
            stack.wait_services(services=("ingest", "profile"))
            for rate in rates:
                console.print(f"Freshness: {rate:,.0f} events/s through ingest for {seconds}s ...")
                before = bench_stages.scrape(stack.url("profile"))
                lat = asyncio.run(freshness(stack, rate=rate, seconds=seconds))
                rows.append((f"freshness at {rate:,.0f} ev/s, ingest 200 → GET: p50 / p99",
                             f"{pct(lat, .5):,.0f} / {pct(lat, .99):,.0f} ms "
                             f"({len(lat)} probes)"))
                rows.append(("  per stage (ingest receipt → stored), p50 / p99",
                             bench_stages.per_stage(before,
                                                    bench_stages.scrape(stack.url("profile")))))
                asyncio.run(drained(stack))  # a saturated pipeline catches up first
            stack.stop_services()

        if profiles > 0:
            rows += scale(stack, profiles, logs)
    finally:
        stack.down()
    table = Table(title="profile benchmark")
    table.add_column("measure")
    table.add_column("value", justify="right")
    for name, value in rows:
        table.add_row(name, value)
    console.print(table)


def scale(stack: Stack, profiles: int, logs: Path) -> list[tuple[str, str]]:
    """Build ``profiles`` single-touchpoint profiles, then flush Redis and rebuild them."""
    run = uuid.uuid4().hex[:6]
    source = TopicSpec(f"bench.touchpoints.{run}", partitions=PARTITIONS)
    resolved = TopicSpec(f"bench.resolved.{run}", partitions=PARTITIONS)
    asyncio.run(ensure_topics(stack.kafka_bootstrap, [source, resolved]))
    console.print(f"Scale: {profiles:,} profiles ...")
    asyncio.run(fill(stack.kafka_bootstrap, source.name, synthetic(run, profiles, 1)))
    settings = {"RAPPORT_KAFKA_BOOTSTRAP": stack.kafka_bootstrap,
                "RAPPORT_REDIS_URL": stack.redis_url, "RAPPORT_DEV_KEYS": "true",
                "RAPPORT_TOUCHPOINTS_TOPIC": source.name, "RAPPORT_RESOLVED_TOPIC": resolved.name,
                "RAPPORT_PROFILE_GROUP_ID": f"bench-scale-{run}"}
    asyncio.run(_flush(stack.redis_url))
    base = asyncio.run(used_memory(stack.redis_url))
    workers = Workers(settings, logs)
    workers.start(2)
    _, built = fold_rate(workers, profiles, f"building {profiles:,} profiles")
    workers.stop()
    memory = asyncio.run(used_memory(stack.redis_url)) - base
    asyncio.run(_flush(stack.redis_url))
    os.environ.update(settings)
    try:
        t0 = time.monotonic()
        asyncio.run(_rebuild(stack.redis_url))
        workers.start(2)
        fold_rate(workers, profiles, f"rebuilding {profiles:,} profiles")
        rebuild_s = time.monotonic() - t0
        workers.stop()
    finally:
        for k in settings:
            os.environ.pop(k, None)
    return [(f"{profiles:,} profiles: Redis memory", f"{memory / 2**20:,.0f} MiB "
             f"({memory / profiles:,.0f} B per profile)"),
            (f"{profiles:,} profiles: built / rebuilt (2 workers, incl. start)",
             f"{built:,.0f} s / {rebuild_s:,.0f} s")]


async def _rebuild(url: str) -> None:
    redis = redis_store.connect(url)
    try:
        await rebuild(ProfileSettings(), redis, wait_s=60)
    finally:
        await redis.aclose()


async def _flush(url: str) -> None:
    redis = redis_store.connect(url)
    try:
        await redis.flushall(asynchronous=True)  # millions of keys: freed in the background
    finally:
        await redis.aclose()

