"""Kafka side of the profile service: a faust-streaming agent folds each
touchpoint into its customer's profile and publishes the new profile."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

import faust
import structlog
from aiokafka import AIOKafkaProducer
from prometheus_client import Counter, Histogram
from pydantic import ValidationError

from rapport.shared import topics
from rapport.shared.events import Touchpoint

from . import domain
from .store import ProfileStore

log = structlog.get_logger(__name__)

PROCESSED = Counter("rapport_profile_touchpoints_total", "Touchpoints seen by the profile fold",
                    ["outcome"])
LAG = Histogram("rapport_profile_freshness_seconds",
                "From ingest's receipt to the profile being stored",
                buckets=(.005, .01, .025, .05, .1, .25, .5, 1, 2.5, 5, 10, 30))


@dataclass(frozen=True)
class Record:
    topic: str
    partition: int
    offset: int
    value: bytes


class ProfileProcessor:
    """Applies touchpoints exactly once in effect, a micro-batch at a time.

    Order: drop records whose offset Redis already reflects; fold the rest in
    memory; publish each changed profile (acks=all); then store profiles,
    identities, timelines and the new offsets in one MULTI/EXEC. A crash
    between any two steps leads to a redelivery that recomputes and
    republishes the same profiles.
    """

    def __init__(self, store: ProfileStore, producer: AIOKafkaProducer) -> None:
        self._store = store
        self._producer = producer
        self._applied: dict[tuple[str, int], int] = {}

    def forget_partitions(self) -> None:
        """After a rebalance another worker may have advanced them: reread from Redis."""
        self._applied.clear()

    async def handle(self, raw: bytes, *, topic: str, partition: int, offset: int) -> None:
        await self.handle_batch([Record(topic, partition, offset, raw)])

    async def _fresh(self, records: list[Record]) -> list[Record]:
        for key in {(r.topic, r.partition) for r in records} - self._applied.keys():
            self._applied[key] = await self._store.applied_offset(*key)
        fresh = [r for r in records if r.offset > self._applied[(r.topic, r.partition)]]
        if len(fresh) < len(records):
            PROCESSED.labels("redelivered").inc(len(records) - len(fresh))
        return fresh

    async def handle_batch(self, records: list[Record]) -> None:
        fresh = await self._fresh(records)
        if not fresh:
            return
        decoded: list[tuple[Record, Touchpoint]] = []
        for r in fresh:
            try:
                decoded.append((r, Touchpoint.from_bytes(r.value)))
            except ValidationError:
                log.error("undecodable_touchpoint", partition=r.partition, offset=r.offset)
                PROCESSED.labels("undecodable").inc()
        customers = sorted({tp.customer_key for _, tp in decoded})
        before = dict(zip(customers, await self._store.load_many(customers), strict=True))
        after = dict(before)
        now = datetime.now(UTC)
        applied: list[Touchpoint] = []
        for _, tp in decoded:
            cid = tp.customer_key
            after[cid] = domain.apply(after[cid], tp, customer_id=cid, processed_at=now)
            applied.append(tp)
        changed = [p for p in after.values() if p is not None]
        acks = [await self._producer.send(topics.PROFILE_UPDATES.name, p.to_bytes(),
                                          key=p.customer_id.encode()) for p in changed]
        await asyncio.gather(*acks)
        offsets: dict[tuple[str, int], int] = {}
        for r in fresh:
            offsets[(r.topic, r.partition)] = max(r.offset, offsets.get((r.topic, r.partition), -1))
        new_identities = {}
        for cid, p in after.items():
            if p is None:
                continue
            known = set(before[cid].identities) if before[cid] else set()
            new_identities[cid] = [i for i in p.identities if i not in known]
        await self._store.commit_batch(changed, new_identities, applied, offsets)
        self._applied.update(offsets)
        PROCESSED.labels("applied").inc(len(applied))
        done = datetime.now(UTC)
        for tp in applied:
            LAG.observe(max(0.0, (done - tp.received_at).total_seconds()))


def build_stream_app(*, bootstrap: str, group_id: str, processor: ProfileProcessor,
                     datadir: Path, max_batch: int = 500,
                     batch_window_s: float = 0.02) -> faust.App:
    (datadir / group_id).mkdir(parents=True, exist_ok=True)
    app = faust.App(
        group_id,
        broker=";".join(f"kafka://{h.strip()}" for h in bootstrap.split(",")),
        store="memory://",
        web_enabled=False,
        topic_allow_declare=False,
        topic_disable_leader=True,
        consumer_auto_offset_reset="earliest",
        autodiscover=False,
        datadir=str(datadir / group_id),
    )
    touchpoints = app.topic(topics.TOUCHPOINTS.name, key_type=bytes, value_type=bytes,
                            key_serializer="raw", value_serializer="raw")

    @app.agent(touchpoints, name="fold_touchpoints")
    async def fold_touchpoints(stream: faust.StreamT) -> None:
        async for events in stream.take_events(max_batch, within=batch_window_s):
            await processor.handle_batch([
                Record(e.message.topic, e.message.partition, e.message.offset, e.value)
                for e in events])

    @app.on_rebalance_complete.connect
    async def _rebalanced(sender: object, **_: object) -> None:
        processor.forget_partitions()

    return app
