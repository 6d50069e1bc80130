"""Attribution's Kafka side: the decision log opens windows, the order facts count into
them (decisions first in every batch, so an order finds the decision made just before
it), and a closer hands each due window to the uplift learner once.

Delivery is at least once and each effect is once (see :mod:`.attribution_store`): a
batch's offsets are committed after it is applied; a restart or a replay re-applies
what was not committed and changes nothing that was.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Sequence
from datetime import UTC, datetime
from typing import Any

import structlog
from aiokafka import AIOKafkaConsumer, ConsumerRecord
from prometheus_client import Counter
from tenacity import AsyncRetrying, retry_if_exception, wait_exponential

from rapport.shared import topics
from rapport.shared.batching import BatchLoop
from rapport.shared.deadletter import DeadLetters
from rapport.shared.events import DecisionLogged, OrderFact

from . import attribution
from .attribution_store import AttributionStore
from .uplift_store import UpliftStore

log = structlog.get_logger(__name__)
FACTS = Counter("rapport_attribution_facts_total", "Orders and refunds heard by attribution",
                ["kind", "result"])
WINDOWS = Counter("rapport_attribution_windows_total", "Attribution windows",
                  ["event", "group"])
READERS: dict[str, Callable[[bytes], Any]] = {
    topics.DECISIONS.name: DecisionLogged.from_bytes,
    topics.ORDER_FACTS.name: OrderFact.from_bytes,
}


class Attributor:
    def __init__(self, consumer: AIOKafkaConsumer, store: AttributionStore,
                 dead_letters: DeadLetters, transient: Callable[[BaseException], bool]
                 ) -> None:
        self._store = store
        self._dead_letters = dead_letters
        self._transient = transient
        self._loop = BatchLoop(consumer, dict.fromkeys(READERS, self._on_batch),
                               group="next-action-attribution", max_records=1000,
                               poll_ms=300, sequential=True)

    def stop(self) -> None:
        self._loop.stop()

    async def run(self) -> None:
        await self._loop.run()

    async def _on_batch(self, records: list[ConsumerRecord]) -> None:
        retrying = AsyncRetrying(retry=retry_if_exception(self._transient),
                                 wait=wait_exponential(multiplier=0.1, max=10), reraise=True)
        await retrying(self.apply, records)

    async def apply(self, records: Sequence[ConsumerRecord]) -> None:
        decisions: list[DecisionLogged] = []
        facts: list[OrderFact] = []
        for record in records:
            try:
                read = READERS[record.topic](record.value)
            except Exception as exc:  # the record's own fault: set aside
                await self._dead_letters.send(topic=record.topic, partition=record.partition,
                                              offset=record.offset, value=record.value,
                                              reason=f"{type(exc).__name__}: {exc}")
                continue
            (decisions if isinstance(read, DecisionLogged) else facts).append(read)
        if decisions:
            opened = await self._store.open([attribution.opened(d) for d in decisions],
                                           datetime.now(UTC).timestamp())
            WINDOWS.labels("opened", "any").inc(opened.windows)
            if opened.claimed:  # heard as unattributed, then taken by a decision logged late
                FACTS.labels("order", "attributed_late_decision").inc(opened.claimed)
        for f, counted in zip(facts, await self._store.count(facts), strict=True):
            FACTS.labels(f.kind, counted.result).inc()


class WindowCloser:
    """Every ``interval_s``: the windows due, closed, learnt from and counted once."""

    def __init__(self, store: AttributionStore, uplift: UpliftStore, interval_s: float,
                 ) -> None:
        self._store = store
        self._uplift = uplift
        self._interval = interval_s

    async def sweep(self, now: datetime) -> int:
        total = 0
        while True:
            due = await self._store.due(now.timestamp())
            if not due:
                return total
            windows = await self._store.close(due)
            learnt = await self._uplift.learn(windows)
            await self._store.forget(due)
            for w in windows:
                WINDOWS.labels("closed", w.group).inc()
            total += learnt.windows
            if len(due) < 500:
                return total

    async def run(self) -> None:
        while True:
            try:
                closed = await self.sweep(datetime.now(UTC))
                if closed:
                    log.info("attribution_windows_closed", count=closed)
            except Exception as exc:  # Redis down: try again next round
                log.warning("attribution_close_failed", error=repr(exc))
            await asyncio.sleep(self._interval)


def make_consumer(bootstrap: str, group_id: str) -> AIOKafkaConsumer:
    return AIOKafkaConsumer(
        topics.DECISIONS.name, topics.ORDER_FACTS.name, bootstrap_servers=bootstrap,
        group_id=group_id, client_id="rapport-next-action-attribution",
        enable_auto_commit=False, auto_offset_reset="earliest")
