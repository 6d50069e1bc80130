"""Kafka adapter: publishes touchpoints and dead letters, and reports, record
by record, which ones Kafka acknowledged (acks=all)."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Sequence
from typing import Any

from aiokafka import AIOKafkaProducer
from prometheus_client import Histogram

from rapport.shared import topics

ACK_LATENCY = Histogram("rapport_ingest_kafka_ack_seconds",
                        "Time from send to Kafka acknowledgement of a request's records",
                        buckets=(.001, .0025, .005, .01, .025, .05, .1, .25, .5, 1, 2.5, 10))


class TouchpointPublisher:
    def __init__(self, producer: AIOKafkaProducer) -> None:
        self._producer = producer

    async def _send(self, topic: str, value: bytes, key: bytes | None = None,
                    ) -> asyncio.Future[Any] | BaseException:
        try:
            return await self._producer.send(topic, value, key=key)
        except Exception as exc:  # refused before sending (buffer full, too large): this one
            return exc

    async def publish(self, records: Sequence[tuple[bytes, bytes]], letters: Sequence[bytes],
                      ) -> tuple[list[BaseException | None], bool]:
        """Send every touchpoint record (key, sealed value) and dead letter; return the
        outcome of each touchpoint and whether every dead letter was acknowledged. A
        record Kafka refuses fails alone, so what was sent before it is still confirmed.
        Waits for Kafka however long it takes: callers bound it."""
        start = time.perf_counter()
        sends = [await self._send(topics.TOUCHPOINTS.name, value, key=key)
                 for key, value in records]
        sent_letters = [await self._send(topics.DEAD_LETTER.name, letter) for letter in letters]
        outcomes = await _outcomes(sends)
        letters_ok = not any(await _outcomes(sent_letters))
        ACK_LATENCY.observe(time.perf_counter() - start)
        return outcomes, letters_ok


async def _outcomes(sends: list[asyncio.Future[Any] | BaseException],
                    ) -> list[BaseException | None]:
    """Each record's failure, or None once Kafka acknowledged it."""
    pending = [s for s in sends if not isinstance(s, BaseException)]
    acks = iter(await asyncio.gather(*pending, return_exceptions=True))
    out: list[BaseException | None] = []
    for s in sends:
        result = s if isinstance(s, BaseException) else next(acks)
        out.append(result if isinstance(result, BaseException) else None)
    return out
