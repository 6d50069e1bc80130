"""Kafka adapter: publishes touchpoints and dead letters, and reports, record
by record, which ones Kafka acknowledged (acks=all)."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Sequence

import orjson
from aiokafka import AIOKafkaProducer
from prometheus_client import Histogram

from rapport.shared import topics
from rapport.shared.events import Touchpoint

from .domain import Rejection

ACK_LATENCY = Histogram("rapport_ingest_kafka_ack_seconds",
                        "Time from send to Kafka acknowledgement of a request's records",
                        buckets=(.001, .0025, .005, .01, .025, .05, .1, .25, .5, 1, 2.5, 10))


class TouchpointPublisher:
    def __init__(self, producer: AIOKafkaProducer) -> None:
        self._producer = producer

    async def publish(self, accepted: Sequence[Touchpoint], rejected: Sequence[Rejection],
                      raw_rejected: Sequence[object], source: str,
                      ) -> tuple[list[BaseException | None], bool]:
        """Send everything; return the outcome of each touchpoint and whether every dead
        letter was acknowledged. Waits for Kafka however long it takes: callers bound it."""
        start = time.perf_counter()
        futures = [await self._producer.send(topics.TOUCHPOINTS.name, tp.to_bytes(),
                                             key=tp.customer_key.encode()) for tp in accepted]
        letters = []
        for rej, raw in zip(rejected, raw_rejected, strict=True):
            letter = {"source": source, "index": rej.index, "messageId": rej.message_id,
                      "reason": rej.reason, "errors": rej.errors, "message": raw}
            letters.append(await self._producer.send(
                topics.DEAD_LETTER.name, orjson.dumps(letter, default=str)))
        results = await asyncio.gather(*futures, return_exceptions=True)
        letter_results = await asyncio.gather(*letters, return_exceptions=True)
        ACK_LATENCY.observe(time.perf_counter() - start)
        outcomes = [r if isinstance(r, BaseException) else None for r in results]
        return outcomes, not any(isinstance(r, BaseException) for r in letter_results)
