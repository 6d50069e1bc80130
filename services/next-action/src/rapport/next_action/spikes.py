"""Active demand spikes, from the demand alerts topic: which categories are surging
now, for the arbitration's ``spike_boost``.

Folded from ``rapport.demand-alerts.v1`` (``demand_spike_started`` / ``_ended`` with the
spike as the ops API shows it), read from its beginning at start (one partition, in
order), so every replica knows the same spikes without reading the demand service's
storage. A spike counts for a category when it rises, on the category's own series or
on one of its products (the spike names its ``category``).
"""

from __future__ import annotations

import asyncio
from collections.abc import Mapping
from typing import Any

import orjson
import structlog
from aiokafka import AIOKafkaConsumer, ConsumerRecord, TopicPartition

from rapport.shared import topics
from rapport.shared.batching import BatchLoop

log = structlog.get_logger(__name__)


def category_of(spike: Mapping[str, Any]) -> str | None:
    series = spike.get("series") or {}
    if series.get("dimension") == "category":
        return str(series.get("value"))
    category = spike.get("category")
    return None if category is None else str(category)


def fold(active: dict[str, str], record: Mapping[str, Any]) -> dict[str, str]:
    """Spike id -> category of the rising spikes still open, after one alert record."""
    spike = record.get("spike") or {}
    sid, category = spike.get("id"), category_of(spike)
    if not isinstance(sid, str):
        return active
    if record.get("type") == "demand_spike_started" and category is not None \
            and spike.get("direction", "up") == "up":
        return {**active, sid: category}
    if record.get("type") == "demand_spike_ended" and sid in active:
        return {k: v for k, v in active.items() if k != sid}
    return active


class SpikeWatch:
    def __init__(self, bootstrap: str) -> None:
        self._bootstrap = bootstrap
        self._active: dict[str, str] = {}

    def categories(self) -> frozenset[str]:
        return frozenset(self._active.values())

    def apply(self, records: list[ConsumerRecord]) -> None:
        for record in records:
            try:
                self._active = fold(self._active, orjson.loads(record.value))
            except (orjson.JSONDecodeError, AttributeError, TypeError) as exc:
                log.warning("spike_record_unreadable", offset=record.offset,
                            error=repr(exc))

    async def run(self) -> None:
        """The alerts topic replayed from its start (the shared batch loop, no group)."""
        consumer = AIOKafkaConsumer(bootstrap_servers=self._bootstrap,
                                    enable_auto_commit=False,
                                    client_id="rapport-next-action-spikes")
        await consumer.start()

        async def handle(records: list[ConsumerRecord]) -> None:
            self.apply(records)

        try:
            loop = BatchLoop(consumer, {topics.DEMAND_ALERTS.name: handle},
                             group="next-action-spikes", max_records=500, poll_ms=1000)
            await loop.replay([TopicPartition(topics.DEMAND_ALERTS.name, 0)])
            await loop.run()
        finally:
            await consumer.stop()

    async def run_forever(self) -> None:
        """Restart after a failure (Kafka away): spikes are a lever, not a dependency."""
        while True:
            try:
                await self.run()
            except asyncio.CancelledError:
                raise
            except Exception as exc:
                log.warning("spike_watch_failed", error=repr(exc))
                self._active = {}
                await asyncio.sleep(5)
