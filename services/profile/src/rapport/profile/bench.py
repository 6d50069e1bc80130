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
- demand's cost: one worker folds the same events with demand counting on and
  off (``RAPPORT_DEMAND_ENABLED``), back to back, from an empty Redis each time;
- freshness: ingest and profile running, background load through ingest at
  each rate and at 80% of one worker's folding rate, and probe customers whose
  touchpoint is timed from ingest's 200 to the change being visible on
  ``GET /v1/customers/{id}``;
- scale: N single-touchpoint profiles built, Redis memory, then Redis flushed
  and the same profiles rebuilt with ``rebuild``: its time.

It prints figures and leaves the headline ones in ``.bench/profile.json`` (for
``rapport bench summary``); it asserts nothing.
"""

from __future__ import annotations

import asyncio
import os
import random
import statistics
import tempfile
import time
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path

import orjson
from rich.console import Console
from rich.table import Table

from rapport.shared import keys, layout, redis_store
from rapport.shared.bench_figures import Figures
from rapport.shared.events import Channel, MessageType, Touchpoint
from rapport.shared.kafka import durable_producer, ensure_topics
from rapport.shared.localstack import Stack
from rapport.shared.topics import TopicSpec, facts_beside

from . import bench_stages
from .bench_freshness import drained, freshness, pct
from .bench_limits import faust_ceiling, getmany_limit
from .bench_workers import Workers, demand_cost, fold_rate
from .rebuild import rebuild
from .settings import ProfileSettings

console = Console()
PARTITIONS = 8
SATURATED = 0.8
"""Freshness is also measured at this share of one worker's folding rate."""


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


class Rows(list[tuple[str, str]]):
    """Figures, printed as soon as measured (a long run that fails keeps what it got)."""

    def append(self, row: tuple[str, str]) -> None:
        console.print(f"  {row[0]}: [bold]{row[1]}[/]")
        super().append(row)

    def __iadd__(self, rows):
        for row in rows:
            self.append(row)
        return self


def main(*, events: int, customers: int, profiles: int, rates: list[float],
         seconds: int, demand_rounds: int = 2, pyspy: str | None = None) -> None:
    stack = Stack("bench", say=lambda m: console.print(f"[dim]{m}[/]"))
    stack.wipe()
    rows = Rows()
    figures = Figures("profile", stack.root)
    logs = Path(tempfile.mkdtemp(prefix="rapport-bench-profile-"))
    port = stack.profile.service_ports["profile"] + 98  # the workers' (28100 unshifted)
    try:
        stack.up(services=False)
        bootstrap = stack.kafka_bootstrap
        run = uuid.uuid4().hex[:6]
        source = TopicSpec(f"bench.touchpoints.{run}", partitions=PARTITIONS)
        resolved = TopicSpec(f"bench.resolved.{run}", partitions=PARTITIONS)
        asyncio.run(ensure_topics(bootstrap, [source, resolved, facts_beside(resolved)]))
        console.print(f"Generating {events:,} touchpoints of {customers:,} customers ...")
        records = synthetic(run, customers, max(1, events // customers))
        total = len(records)
        asyncio.run(fill(bootstrap, source.name, records))
        size = statistics.mean(len(r.partition(b"\0")[2]) for r in records[:1000])
        rows.append(("touchpoint record (mean)", f"{size:,.0f} B"))
        figures["events"] = total

        console.print("Limits: aiokafka getmany loop, faust agent that only counts ...")
        raw = asyncio.run(getmany_limit(bootstrap, source.name, total, orjson.loads))
        model = asyncio.run(getmany_limit(bootstrap, source.name, total, Touchpoint.from_bytes))
        fst = asyncio.run(faust_ceiling(bootstrap, source.name, total, logs))
        figures.update(getmany_orjson_per_s=raw, getmany_model_per_s=model, faust_per_s=fst)
        rows += [("limit: aiokafka getmany + orjson decode", f"{raw:,.0f} events/s"),
                 ("limit: aiokafka getmany + pydantic Touchpoint", f"{model:,.0f} events/s"),
                 ("limit: faust take_events(500), count only", f"{fst:,.0f} events/s")]

        settings = {"RAPPORT_KAFKA_BOOTSTRAP": bootstrap, "RAPPORT_REDIS_URL": stack.redis_url,
                    "RAPPORT_DEV_KEYS": "true", "RAPPORT_TOUCHPOINTS_TOPIC": source.name,
                    "RAPPORT_RESOLVED_TOPIC": resolved.name,
                    "RAPPORT_DEMAND_FACTS_TOPIC": facts_beside(resolved).name,
                    "RAPPORT_PROFILE_GROUP_ID": f"bench-profile-{run}"}
        workers = Workers(settings, logs, port)
        workers.start(1)
        one, _ = fold_rate(workers, total, "1 profile worker")
        workers.stop()
        figures["one_worker_per_s"] = one
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
        figures.update(redis_bytes_per_profile=every, redis_json_bytes=foot["json bytes"],
                       touchpoints_per_profile=per)

        if demand_rounds > 0:
            console.print("Demand's cost: the same events folded with demand on and off ...")
            figures.update(demand_cost(settings, source=source.name, total=total, logs=logs,
                                       base_port=port, redis_url=stack.redis_url,
                                       rounds=demand_rounds, pyspy=pyspy))
            rows.append(("profile: 1 worker, demand on / off, events folded/s",
                         f"{figures['demand_on_per_s']:,.0f} / "
                         f"{figures['demand_off_per_s']:,.0f}"))
            rows.append(("demand's cost to the profile path", f"{figures['demand_cost']:.1%}"))

        two_run = uuid.uuid4().hex[:6]
        source2 = TopicSpec(f"bench.touchpoints.{two_run}", partitions=PARTITIONS)
        resolved2 = TopicSpec(f"bench.resolved.{two_run}", partitions=PARTITIONS)
        asyncio.run(ensure_topics(bootstrap, [source2, resolved2, facts_beside(resolved2)]))
        asyncio.run(fill(bootstrap, source2.name, synthetic(two_run, customers,
                                                            max(1, events // customers))))
        workers = Workers({**settings, "RAPPORT_TOUCHPOINTS_TOPIC": source2.name,
                           "RAPPORT_RESOLVED_TOPIC": resolved2.name,
                           "RAPPORT_DEMAND_FACTS_TOPIC": facts_beside(resolved2).name,
                           "RAPPORT_PROFILE_GROUP_ID": f"bench-profile-{two_run}"}, logs, port)
        workers.start(2)
        two, _ = fold_rate(workers, total, "2 profile workers")
        workers.stop()
        figures["two_workers_per_s"] = two
        rows.append(("profile: 2 workers (2 cores), events folded/s", f"{two:,.0f}"))

        rates = [r for r in rates if r > 0]
        if rates and seconds > 0:
            freshness_rows(stack, rows, figures, [*rates, SATURATED * one], seconds)

        if profiles > 0:
            rows += scale(stack, profiles, logs, port)
    finally:
        stack.down()
    table = Table(title="profile benchmark")
    table.add_column("measure")
    table.add_column("value", justify="right")
    for name, value in rows:
        table.add_row(name, value)
    console.print(table)


def freshness_rows(stack: Stack, rows: Rows, figures: Figures, rates: list[float],
                   seconds: int) -> None:
    """Freshness at each rate (the last: ``SATURATED`` of one worker's folding rate)."""
    stack.start_services(("ingest", "profile"), {"RAPPORT_LOG_LEVEL": "WARNING",
                                                 "RAPPORT_INGEST_WORKERS": "1"})
    stack.wait_services(services=("ingest", "profile"))
    background = synthetic(f"{uuid.uuid4().hex[:6]}bg", customers=5000, per_customer=1)
    measured: list[dict[str, object]] = []
    for n, rate in enumerate(rates):
        label = (f"{SATURATED:.0%} of saturation ({rate:,.0f} ev/s)" if n == len(rates) - 1
                 else f"{rate:,.0f} ev/s")
        console.print(f"Freshness: {label} through ingest for {seconds}s ...")
        before = bench_stages.scrape(stack.url("profile"))
        lat = asyncio.run(freshness(stack, background, rate=rate, seconds=seconds))
        after = bench_stages.scrape(stack.url("profile"))
        rows.append((f"freshness at {label}, ingest 200 → GET: p50 / p99",
                     f"{pct(lat, .5):,.0f} / {pct(lat, .99):,.0f} ms ({len(lat)} probes)"))
        rows.append(("  per stage (ingest receipt → stored), p50 / p99",
                     bench_stages.per_stage(before, after)))
        measured.append({"label": label, "rate": rate, "probes": len(lat),
                         "of_saturation": SATURATED if n == len(rates) - 1 else None,
                         "p50_ms": pct(lat, .5) if lat else None,
                         "p99_ms": pct(lat, .99) if lat else None,
                         "stages": bench_stages.stage_ms(before, after)})
        figures["freshness"] = measured
        asyncio.run(drained(stack))  # a saturated pipeline catches up first
    stack.stop_services()


def scale(stack: Stack, profiles: int, logs: Path, port: int) -> list[tuple[str, str]]:
    """Build ``profiles`` single-touchpoint profiles, then flush Redis and rebuild them."""
    run = uuid.uuid4().hex[:6]
    source = TopicSpec(f"bench.touchpoints.{run}", partitions=PARTITIONS)
    resolved = TopicSpec(f"bench.resolved.{run}", partitions=PARTITIONS)
    asyncio.run(ensure_topics(stack.kafka_bootstrap,
                             [source, resolved, facts_beside(resolved)]))
    console.print(f"Scale: {profiles:,} profiles ...")
    asyncio.run(fill(stack.kafka_bootstrap, source.name, synthetic(run, profiles, 1)))
    settings = {"RAPPORT_KAFKA_BOOTSTRAP": stack.kafka_bootstrap,
                "RAPPORT_REDIS_URL": stack.redis_url, "RAPPORT_DEV_KEYS": "true",
                "RAPPORT_TOUCHPOINTS_TOPIC": source.name, "RAPPORT_RESOLVED_TOPIC": resolved.name,
                "RAPPORT_DEMAND_FACTS_TOPIC": facts_beside(resolved).name,
                "RAPPORT_PROFILE_GROUP_ID": f"bench-scale-{run}"}
    asyncio.run(_flush(stack.redis_url))
    base = asyncio.run(used_memory(stack.redis_url))
    workers = Workers(settings, logs, port)
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

