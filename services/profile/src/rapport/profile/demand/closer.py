"""The closer: a periodic task of every profile worker, acting in one at a time (a Redis
lock with expiry), that closes base buckets once the global watermark passed them.

For each closed bucket it feeds every tracked series' detector exactly once: the
detector states, open alerts, product estimates and the last-closed marker are
committed in one MULTI that only applies if the marker is still where the tick
found it (WATCH), so two closers (a lock that expired under a stalled one) or a
crash mid-tick can never feed a bucket twice. Alerts go to Kafka (acks=all) before
that commit; a tick redone after a crash publishes the same alert ids again. The
incidents grouping them (:mod:`.incidents`) are folded bucket by bucket from the same
alerts and committed with them, so a redone tick gives the same incidents too.
"""

from __future__ import annotations

import asyncio
import time
import uuid
from typing import Any

import orjson
import structlog
from aiokafka import AIOKafkaProducer
from datasketches import frequent_strings_sketch
from prometheus_client import Counter, Gauge

from rapport.shared import topics

from . import clock, forecast_view, incidents, sketches
from .closing import BucketDemand, ClosePolicy, DetectorKind, Slot, Tracking, close_bucket
from .series import PRODUCT_METRICS, Dimension, Metric, SeriesKey, split_item
from .store import CloseWrites, DemandStore, StaleClose
from .tally import field_metric

log = structlog.get_logger(__name__)

CLOSED = Counter("rapport_demand_buckets_closed_total", "Base demand buckets closed")
ALERTS = Counter("rapport_demand_alerts_total", "Demand spike alerts", ["kind"])
INCIDENTS = Counter("rapport_demand_incidents_total", "Demand incident records", ["kind"])
RESETS = Counter("rapport_demand_detector_resets_total",
                 "Detectors started afresh because their stored state did not load")
_JSON = orjson.OPT_SERIALIZE_NUMPY  # detector states may hold numpy arrays and scalars
CLOSED_AT = Gauge("rapport_demand_closed_through_seconds",
                  "End (event time, epoch seconds) of the last closed demand bucket")


def _key(record: dict[str, Any]) -> bytes:
    """Alert records are keyed by spike id, incident records by incident id."""
    return str((record.get("spike") or record["incident"])["id"]).encode()


def _product_field(metric: Metric, item: str) -> str:
    return SeriesKey(Dimension.PRODUCT, split_item(item)[0], metric).field


def _fields(metric: Metric, items: dict[str, int]) -> dict[str, int]:
    out: dict[str, int] = {}
    for item, amount in items.items():
        name = _product_field(metric, item)
        out[name] = out.get(name, 0) + amount
    return out


class _Rollups:
    """Hour and day product sketches touched by one tick, loaded once, written once."""

    def __init__(self, store: DemandStore, lg_k: int, top: int) -> None:
        self._store = store
        self._lg_k = lg_k
        self._top = top
        self._sketches: dict[tuple[int, int], dict[Metric, frequent_strings_sketch]] = {}
        self._initial: dict[tuple[int, int], set[str]] = {}
        self._dirty: set[tuple[int, int]] = set()

    async def get(self, width: int, start: int) -> dict[Metric, frequent_strings_sketch]:
        where = (width, start)
        if where not in self._sketches:
            raw = await self._store.rollup_sketches(width, start)
            self._sketches[where] = {m: sketches.load(raw.get(m.value), self._lg_k)
                                     for m in PRODUCT_METRICS}
            self._initial[where] = set(self.top_fields(where))
        return self._sketches[where]

    def top_fields(self, where: tuple[int, int]) -> dict[str, int]:
        out: dict[str, int] = {}
        for metric, sketch in self._sketches[where].items():
            out.update(_fields(metric, sketches.items(sketch, self._top)))
        return out

    async def add(self, width: int, start: int, metric: Metric,
                  bucket: frequent_strings_sketch) -> None:
        if not bucket.is_empty():
            (await self.get(width, start))[metric].merge(bucket)
            self._dirty.add((width, start))

    async def heavy(self, day_start: int, metric: Metric) -> list[str]:
        """Items heavy over this day and the one before (recent, not all-time)."""
        both = frequent_strings_sketch(self._lg_k)
        for start in (day_start - clock.DAY, day_start):
            sketch = (await self.get(clock.DAY, start))[metric]
            if not sketch.is_empty():
                both.merge(sketch)
        return list(sketches.items(both, self._top))

    def write_into(self, writes: CloseWrites) -> None:
        for where in sorted(self._dirty):
            current = self.top_fields(where)
            writes.product_counts.setdefault(where, {}).update(current)
            writes.dropped_products[where] = self._initial[where] - current.keys()
            writes.rollup_sketches[where] = {m.value: s.serialize()
                                             for m, s in self._sketches[where].items()
                                             if not s.is_empty()}


class DemandCloser:
    def __init__(self, store: DemandStore, producer: AIOKafkaProducer, *,
                 buckets: clock.Buckets, policy: ClosePolicy, kind: DetectorKind,
                 partitions_prefix: str, lateness_s: float, idle_s: float,
                 backfill_s: float, sketch_lg_k: int, interval_s: float = 2.0,
                 lock_ttl_s: float = 20.0, max_buckets_per_tick: int = 48,
                 alerts_topic: str = topics.DEMAND_ALERTS.name,
                 incident_policy: incidents.IncidentPolicy | None = None) -> None:
        self._store = store
        self._producer = producer
        self._buckets = buckets
        self._policy = policy
        self._kind = kind
        self._prefix = partitions_prefix
        self._lateness = lateness_s
        self._idle = idle_s
        self._backfill = backfill_s
        self._lg_k = sketch_lg_k
        self._interval = interval_s
        self._lock_ttl_ms = int(lock_ttl_s * 1000)
        self._max_buckets = max_buckets_per_tick
        self._topic = alerts_topic
        self._owner = uuid.uuid4().hex
        self._incident_policy = incident_policy or incidents.IncidentPolicy()
        self._cache: tuple[int | None, Tracking, incidents.Book] | None = None
        self._last_error: tuple[str, float] = ("", 0.0)
        self._stopping = False

    def stop(self) -> None:
        """Stop at the next bucket, committing nothing half done. A flag as well as the
        task's cancellation: a client library that swallows a cancellation (seen while
        Kafka acknowledges alerts) must not keep a stopping worker closing for long."""
        self._stopping = True

    async def run(self) -> None:
        """Tick until stopped; a failed tick is logged (once per kind and minute)."""
        try:
            while not self._stopping:
                try:
                    await self.tick()
                except StaleClose:
                    self._cache = None
                except Exception as exc:  # the next tick retries; nothing was committed
                    self._cache = None
                    self._report(exc)
                await asyncio.sleep(self._interval)
        finally:
            await asyncio.shield(self._store.release_lock(self._owner))

    def _report(self, exc: Exception) -> None:
        kind, now = type(exc).__name__, time.monotonic()
        if kind != self._last_error[0] or now - self._last_error[1] > 60:
            self._last_error = (kind, now)
            log.error("demand_close_failed", error=kind, detail=str(exc)[:200])

    async def tick(self, now: float | None = None) -> int:
        """Close what the watermark allows (at most a few dozen buckets); returns how many."""
        now = time.time() if now is None else now
        if not await self._store.hold_lock(self._owner, self._lock_ttl_ms):
            self._cache = None
            return 0
        view = await self._store.clock_view(self._prefix)
        watermark = clock.global_watermark(view.clocks, view.active, now=now,
                                           idle_s=self._idle, lateness_s=self._lateness)
        closed = await self._store.closed_through()
        first = int(min(view.first.values())) if view.first else None
        width = self._buckets.base
        plan = clock.closing_plan(closed, first, watermark, width=width,
                                  backfill_s=self._backfill, limit=self._max_buckets)
        if not plan:
            return 0
        tracking, book = await self._tracking(closed)
        self._cache = None  # mutated below: valid again only once committed
        registry = [name for name in await self._store.registry()
                    if not name.startswith(f"{Dimension.PRODUCT.value}:")]
        writes = CloseWrites(through=plan[-1], closed_buckets=plan)
        rollups = _Rollups(self._store, self._lg_k, self._policy.top_products)
        records: list[dict[str, Any]] = []
        for start in plan:
            if self._stopping:
                self._cache = None
                return 0
            found = await self._close(start, tracking, registry, rollups, writes)
            records += found + self._group(book, start, tracking, found)
        rollups.write_into(writes)
        futures = [await self._producer.send(self._topic, orjson.dumps(r, option=_JSON),
                                             key=_key(r)) for r in records]
        await asyncio.gather(*futures)
        writes.slots = {n: orjson.dumps(s.to_json(), option=_JSON)
                        for n, s in tracking.slots.items()}
        writes.forecast_quality = {
            n: orjson.dumps(forecast_view.quality_json(s.forecaster.quality(),
                                                       s.forecaster.zero_share))
            for n, s in tracking.slots.items() if s.forecaster is not None}
        writes.evicted = set(tracking.evicted)
        writes.alerts = {a["id"]: orjson.dumps(a, option=_JSON)
                         for a in tracking.alerts.values()}
        writes.ended = {i: orjson.dumps(a, option=_JSON) for i, a in tracking.ended.items()}
        writes.incidents = {i: orjson.dumps(x) for i, x in book.open.items()}
        writes.incidents_ended = {i: orjson.dumps(x) for i, x in book.ended.items()}
        await self._store.commit_close(closed, writes)
        tracking.evicted.clear()
        tracking.ended.clear()
        book.ended.clear()
        self._cache = (plan[-1], tracking, book)
        CLOSED.inc(len(plan))
        CLOSED_AT.set(plan[-1] + width)
        spikes = [r for r in records if "spike" in r]
        for r in records:
            (ALERTS if "spike" in r else INCIDENTS).labels(r["type"].rsplit("_", 1)[1]).inc()
        if records:
            log.info("demand_alerts", started=sum(r["type"].endswith("started") for r in spikes),
                     ended=sum(r["type"].endswith("ended") for r in spikes),
                     incident_records=len(records) - len(spikes))
        return len(plan)

    def _group(self, book: incidents.Book, start: int, tracking: Tracking,
               found: list[dict[str, Any]]) -> list[dict[str, Any]]:
        """The bucket's alerts into incidents; every alert is stamped with its own."""
        ended = [r["spike"] for r in found if r["type"] == "demand_spike_ended"]
        records, of = incidents.advance(book, start, self._buckets.base,
                                        tracking.alerts.values(), ended,
                                        self._incident_policy)
        incidents.stamp(tracking.alerts.values(), of)
        incidents.stamp([r["spike"] for r in found], of)
        return records

    async def _tracking(self, closed: int | None) -> tuple[Tracking, incidents.Book]:
        if self._cache is not None and self._cache[0] == closed:
            return self._cache[1], self._cache[2]
        book = incidents.Book(open=await self._store.open_incidents())
        slots, open_alerts = await self._store.tracking_state()
        restored: dict[str, Slot] = {}
        for name, body in slots.items():
            try:
                restored[name] = Slot.from_json(body, self._kind)
            except Exception as exc:  # a state of another detector version: start afresh
                log.warning("demand_detector_reset", error=type(exc).__name__)
                RESETS.inc()
                restored[name] = Slot(self._kind.new(self._buckets.base), int(body["seen"]),
                                      body.get("category"))
        return Tracking(
            slots=restored,
            alerts={SeriesKey(Dimension(a["series"]["dimension"]), a["series"]["value"],
                              Metric(a["series"]["metric"])).field: a
                    for a in open_alerts.values()}), book

    async def _close(self, start: int, tracking: Tracking, registry: list[str],
                     rollups: _Rollups, writes: CloseWrites) -> list[dict[str, Any]]:
        width = self._buckets.base
        coarse = {n: v for n, v in (await self._store.bucket_counts(width, start)).items()
                  if not n.startswith(f"{Dimension.PRODUCT.value}:")}
        partials = await self._store.open_bucket_sketches(start)
        merged = {m: sketches.merged([raw for name, raw in sorted(partials.items())
                                      if field_metric(name) is m], self._lg_k)
                  for m in PRODUCT_METRICS}
        top = {m: sketches.items(s, self._policy.top_products) for m, s in merged.items()}
        base_fields: dict[str, int] = {}
        for metric, items in top.items():
            base_fields.update(_fields(metric, items))
        if base_fields:
            writes.product_counts[(width, start)] = base_fields
        day_start = self._buckets.start(start, clock.DAY)
        for metric in PRODUCT_METRICS:
            for rollup_width, rollup_start in self._buckets.containing(start)[1:]:
                await rollups.add(rollup_width, rollup_start, metric, merged[metric])
        day_heavy = {m: await rollups.heavy(day_start, m) for m in PRODUCT_METRICS}
        demand = BucketDemand(
            start=start, coarse=coarse, registry=registry, bucket_heavy=top,
            day_heavy=day_heavy,
            estimate=lambda metric, item: int(merged[metric].get_estimate(item)))
        return close_bucket(tracking, demand, self._kind, self._policy)
