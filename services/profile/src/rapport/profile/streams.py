"""Kafka side of the profile service: a faust-streaming agent folds each
touchpoint into its customer's profile and publishes the new profile."""

from __future__ import annotations

from datetime import UTC, datetime

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


class ProfileProcessor:
    """Applies one touchpoint exactly once in effect.

    Order: skip if Redis already holds this offset's effect; otherwise compute,
    publish the new profile (acks=all), then store profile and offset in one
    transaction. A crash between any two steps leads to a redelivery that
    recomputes and republishes the same profile.
    """

    def __init__(self, store: ProfileStore, producer: AIOKafkaProducer) -> None:
        self._store = store
        self._producer = producer
        self._applied: dict[tuple[str, int], int] = {}

    def forget_partitions(self) -> None:
        """After a rebalance another worker may have advanced them: reread from Redis."""
        self._applied.clear()

    async def handle(self, raw: bytes, *, topic: str, partition: int, offset: int) -> None:
        tp_key = (topic, partition)
        if tp_key not in self._applied:
            self._applied[tp_key] = await self._store.applied_offset(topic, partition)
        if offset <= self._applied[tp_key]:
            PROCESSED.labels("redelivered").inc()
            return
        try:
            tp = Touchpoint.from_bytes(raw)
        except ValidationError:
            log.error("undecodable_touchpoint", partition=partition, offset=offset)
            await self._store.skip(topic=topic, partition=partition, offset=offset)
            self._applied[tp_key] = offset
            PROCESSED.labels("undecodable").inc()
            return
        customer_id = tp.customer_key
        before = await self._store.load(customer_id)
        now = datetime.now(UTC)
        after = domain.apply(before, tp, customer_id=customer_id, processed_at=now)
        known = set(before.identities) if before else set()
        await self._producer.send_and_wait(topics.PROFILE_UPDATES.name, after.to_bytes(),
                                           key=customer_id.encode())
        await self._store.commit(after, [i for i in after.identities if i not in known], tp,
                                 topic=topic, partition=partition, offset=offset)
        self._applied[tp_key] = offset
        PROCESSED.labels("applied").inc()
        LAG.observe(max(0.0, (datetime.now(UTC) - tp.received_at).total_seconds()))


def build_stream_app(*, bootstrap: str, group_id: str, processor: ProfileProcessor) -> faust.App:
    app = faust.App(
        group_id,
        broker=";".join(f"kafka://{h.strip()}" for h in bootstrap.split(",")),
        store="memory://",
        web_enabled=False,
        topic_allow_declare=False,
        topic_disable_leader=True,
        consumer_auto_offset_reset="earliest",
        autodiscover=False,
    )
    touchpoints = app.topic(topics.TOUCHPOINTS.name, key_type=bytes, value_type=bytes,
                            key_serializer="raw", value_serializer="raw")

    @app.agent(touchpoints, name="fold_touchpoints")
    async def fold_touchpoints(stream: faust.StreamT) -> None:
        async for event in stream.events():
            msg = event.message
            await processor.handle(event.value, topic=msg.topic, partition=msg.partition,
                                   offset=msg.offset)

    @app.on_rebalance_complete.connect
    async def _rebalanced(sender: object, **_: object) -> None:
        processor.forget_partitions()

    return app
