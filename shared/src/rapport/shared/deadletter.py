"""The stream dead-letter topic: a record that a stage or consumer cannot apply is
set aside there with its reason, and the rest of its batch goes on without it."""

from __future__ import annotations

import base64
from datetime import UTC, datetime

import orjson
import structlog
from aiokafka import AIOKafkaProducer
from prometheus_client import Counter

from . import topics

log = structlog.get_logger(__name__)
DEAD_LETTERED = Counter("rapport_stream_dead_letters_total",
                        "Records set aside on the stream dead-letter topic", ["stage"])


def letter(*, stage: str, topic: str, partition: int, offset: int, reason: str,
           value: bytes | None) -> bytes:
    """The dead letter's JSON: where the record was, why it failed, and its bytes
    (base64; personal fields in it are sealed as everywhere on Kafka)."""
    return orjson.dumps({
        "stage": stage, "topic": topic, "partition": partition, "offset": offset,
        "reason": reason[:500], "at": datetime.now(UTC).isoformat(),
        "value": None if value is None else base64.b64encode(value).decode()})


class DeadLetters:
    def __init__(self, producer: AIOKafkaProducer, stage: str,
                 topic: str = topics.STREAM_DEAD_LETTER.name) -> None:
        self._producer = producer
        self._stage = stage
        self._topic = topic

    async def send(self, *, topic: str, partition: int, offset: int, reason: str,
                   value: bytes | None) -> None:
        """Publish one dead letter and wait for Kafka's acknowledgement."""
        await self._producer.send_and_wait(self._topic, letter(
            stage=self._stage, topic=topic, partition=partition, offset=offset,
            reason=reason, value=value))
        DEAD_LETTERED.labels(self._stage).inc()
        log.error("record_dead_lettered", stage=self._stage, topic=topic,
                  partition=partition, offset=offset, reason=reason[:200])
