"""Kafka side of scoring: rescore on every profile update, learn offer response
rates from outcomes. Offsets are committed only after the effects are stored;
both effects are idempotent, so redeliveries change nothing."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime

import structlog
from aiokafka import AIOKafkaConsumer
from prometheus_client import Counter
from pydantic import ValidationError

from rapport.shared import topics
from rapport.shared.events import OfferOutcome
from rapport.shared.profiles import CustomerProfile

from . import domain
from .store import ScoringStore

log = structlog.get_logger(__name__)
CONSUMED = Counter("rapport_scoring_records_total", "Records consumed by scoring",
                   ["topic", "outcome"])


class ScoringConsumer:
    def __init__(self, consumer: AIOKafkaConsumer, store: ScoringStore,
                 policy: domain.ScoringPolicy) -> None:
        self._consumer = consumer
        self._store = store
        self._policy = policy

    async def on_profile(self, raw: bytes | None) -> None:
        if raw is None:  # tombstone: erasure is handled by the profile service
            return
        profile = CustomerProfile.from_bytes(raw)
        await self._store.save_scores(domain.score(profile, datetime.now(UTC), self._policy))

    async def on_outcome(self, raw: bytes) -> None:
        outcome = OfferOutcome.from_bytes(raw)
        if await self._store.count_outcome(outcome):
            counts = await self._store.offer_counts(outcome.offer_id)
            exposures = max(counts.get("viewed", 0), counts.get("accepted", 0)
                            + counts.get("rejected", 0) + counts.get("ignored", 0))
            await self._store.set_propensity(
                outcome.offer_id, domain.propensity(counts.get("accepted", 0), exposures))

    async def run(self) -> None:
        handlers = {topics.PROFILE_UPDATES.name: self.on_profile,
                    topics.OUTCOMES.name: self.on_outcome}
        while True:
            batches = await self._consumer.getmany(timeout_ms=500, max_records=500)
            for tp, records in batches.items():
                handle = handlers[tp.topic]
                for record in records:
                    try:
                        await handle(record.value)
                        CONSUMED.labels(tp.topic, "ok").inc()
                    except (ValidationError, ValueError):
                        log.error("undecodable_record", topic=tp.topic, partition=tp.partition,
                                  offset=record.offset)
                        CONSUMED.labels(tp.topic, "undecodable").inc()
            if batches:
                await self._consumer.commit()


def make_consumer(bootstrap: str, group_id: str) -> AIOKafkaConsumer:
    return AIOKafkaConsumer(
        topics.PROFILE_UPDATES.name, topics.OUTCOMES.name,
        bootstrap_servers=bootstrap, group_id=group_id, client_id="rapport-scoring",
        enable_auto_commit=False, auto_offset_reset="earliest",
    )


async def cancel(task: asyncio.Task[None]) -> None:
    task.cancel()
    try:
        await task
    except asyncio.CancelledError:
        pass
