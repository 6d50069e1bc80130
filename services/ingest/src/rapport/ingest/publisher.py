"""Kafka adapter: publishes touchpoints and dead letters, and answers only once
Kafka has acknowledged every record (acks=all)."""

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


class KafkaUnavailable(Exception):
    """Kafka did not acknowledge in time; the caller should retry later."""


class TouchpointPublisher:
    def __init__(self, producer: AIOKafkaProducer, ack_timeout_s: float) -> None:
        self._producer = producer
        self._timeout = ack_timeout_s

    async def publish(self, accepted: Sequence[Touchpoint], rejected: Sequence[Rejection],
                      raw_rejected: Sequence[object], source: str) -> None:
        start = time.perf_counter()

        async def send_all() -> None:
            futures = [
                await self._producer.send(topics.TOUCHPOINTS.name, tp.to_bytes(),
                                          key=tp.customer_key.encode())
                for tp in accepted
            ]
            for rej, raw in zip(rejected, raw_rejected, strict=True):
                letter = {"source": source, "index": rej.index, "messageId": rej.message_id,
                          "errors": rej.errors, "message": raw}
                futures.append(await self._producer.send(
                    topics.DEAD_LETTER.name, orjson.dumps(letter, default=str)))
            await asyncio.gather(*futures)

        if not accepted and not rejected:
            return
        try:
            await asyncio.wait_for(send_all(), timeout=self._timeout)
        except TimeoutError as exc:
            raise KafkaUnavailable("Kafka did not acknowledge in time") from exc
        except Exception as exc:  # any broker-side failure: the client must retry
            raise KafkaUnavailable(f"Kafka refused the records: {type(exc).__name__}") from exc
        finally:
            ACK_LATENCY.observe(time.perf_counter() - start)
