"""The closed loop's Kafka side: outcomes (from ``POST /v1/outcomes``, from ``Offer
...`` touchpoints through ingest, and ``ignored`` once an action's window has passed)
and the decision log, applied in batches by :class:`.learning_store.LearningStore`.

Delivery is at least once; a batch's offsets are committed after it is applied, and
the store's once-markers make a redelivery change nothing. A failure of Redis or Kafka
holds the batch and is retried; a record that cannot be read is dead-lettered.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Sequence
from datetime import UTC, datetime
from typing import Any

import orjson
import structlog
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, ConsumerRecord
from prometheus_client import Counter
from tenacity import AsyncRetrying, retry_if_exception, wait_exponential

from rapport.shared import topics
from rapport.shared.batching import BatchLoop
from rapport.shared.deadletter import DeadLetters
from rapport.shared.events import DecisionLogged, OfferOutcome

from .contacts import ContactBook
from .learning_store import Final, LearningStore
from .store import NextActionStore

log = structlog.get_logger(__name__)
HEARD = Counter("rapport_outcomes_total", "Outcomes heard by the learner",
                ["source", "result"])
FINAL = frozenset({"accepted", "rejected", "ignored"})
OFFER_EVENTS = {"Offer Viewed": "viewed", "Offer Accepted": "accepted",
                "Offer Rejected": "rejected"}
_OFFER_MARK = b'"event":"Offer '


def touchpoint_outcome(raw: bytes) -> tuple[str, str, str] | None:
    """(decision_id, action_id, outcome) of an ``Offer ...`` touchpoint, else None.
    Most touchpoints are not: they are passed over without being parsed."""
    if _OFFER_MARK not in raw:
        return None
    doc = orjson.loads(raw)
    outcome = OFFER_EVENTS.get(doc.get("event") or "")
    props = doc.get("properties") or {}
    d, a = props.get("decision_id"), props.get("action_id")
    if outcome is None or not isinstance(d, str) or not isinstance(a, str):
        return None
    return d, a, outcome


def api_outcome(raw: bytes) -> tuple[str, str, str]:
    o = OfferOutcome.from_bytes(raw)
    return o.decision_id, o.action_id, o.outcome.value


class Learner:
    def __init__(self, consumer: AIOKafkaConsumer, store: NextActionStore,
                 learning: LearningStore, contacts: ContactBook,
                 dead_letters: DeadLetters, transient: Callable[[BaseException], bool]) -> None:
        self._store = store
        self._learning = learning
        self._contacts = contacts
        self._dead_letters = dead_letters
        self._transient = transient
        # One topic after the other, decisions first: an outcome finds its decision.
        self._loop = BatchLoop(consumer, dict.fromkeys(
            (topics.DECISIONS.name, topics.OUTCOMES.name, topics.TOUCHPOINTS.name),
            self._on_batch), group="next-action-learner", max_records=1000, poll_ms=300,
            sequential=True)

    def stop(self) -> None:
        self._loop.stop()

    async def run(self) -> None:
        await self._loop.run()

    async def _on_batch(self, records: list[ConsumerRecord]) -> None:
        await self._retry(self.apply, records)

    async def apply(self, records: Sequence[ConsumerRecord]) -> None:
        said: list[tuple[str, str, str, str]] = []
        logged: list[DecisionLogged] = []
        for record in records:
            try:
                if record.topic == topics.DECISIONS.name:
                    logged.append(DecisionLogged.from_bytes(record.value))
                elif record.topic == topics.OUTCOMES.name:
                    said.append((*api_outcome(record.value), "api"))
                elif (found := touchpoint_outcome(record.value)) is not None:
                    said.append((*found, "ingest"))
            except Exception as exc:  # the record's own fault: set aside
                await self._dead_letters.send(topic=record.topic, partition=record.partition,
                                              offset=record.offset, value=record.value,
                                              reason=f"{type(exc).__name__}: {exc}")
        finals = await self._finals(said)
        applied = await self._learning.apply(finals, logged)
        for f in applied.finals:
            HEARD.labels("final", f.outcome).inc()
        budgeted = {o.offer_id: o for o in (await self._store.catalog()).offers if o.budget}
        for f in finals:  # contact limits count accepted and rejected once (own markers)
            if f.outcome in ("accepted", "rejected"):
                action = next(a for a in f.decision.actions if a.action_id == f.action_id)
                await self._contacts.record(f.decision.customer_id, f.decision.decision_id,
                                            f.action_id, action.offer_id, f.outcome,
                                            datetime.now(UTC),
                                            offer=budgeted.get(action.offer_id))

    async def _finals(self, said: list[tuple[str, str, str, str]]) -> list[Final]:
        wanted = sorted({d for d, _, o, _ in said if o in FINAL})
        decisions = dict(zip(wanted, await self._store.decisions(wanted), strict=True))
        finals = []
        for d, a, outcome, source in said:
            decision = decisions.get(d)
            if outcome not in FINAL:
                HEARD.labels(source, "viewed").inc()
                continue
            if decision is None or not any(x.action_id == a for x in decision.actions):
                HEARD.labels(source, "unknown").inc()
                continue
            finals.append(Final(decision, a, outcome))
        return finals

    async def _retry(self, fn: Any, *args: Any, **kwargs: Any) -> Any:
        retrying = AsyncRetrying(retry=retry_if_exception(self._transient),
                                 wait=wait_exponential(multiplier=0.1, max=10), reraise=True)
        return await retrying(fn, *args, **kwargs)


class IgnoredSweeper:
    """Past an action's window with nothing final heard, publish its ``ignored``
    outcome (the learner counts it once, like any other)."""

    def __init__(self, store: NextActionStore, learning: LearningStore,
                 producer: AIOKafkaProducer, interval_s: float) -> None:
        self._store = store
        self._learning = learning
        self._producer = producer
        self._interval = interval_s

    async def sweep(self, now: datetime) -> int:
        due = await self._learning.due(now.timestamp())
        if not due:
            return 0
        wanted = sorted({d for d, _ in due})
        decisions = dict(zip(wanted, await self._store.decisions(wanted), strict=True))
        sends = []
        for d, a in due:
            decision = decisions.get(d)
            action = None if decision is None else next(
                (x for x in decision.actions if x.action_id == a), None)
            if decision is None or action is None:
                continue
            outcome = OfferOutcome(decision_id=d, action_id=a, offer_id=action.offer_id,
                                   customer_id=decision.customer_id, outcome="ignored",
                                   channel=decision.channel, occurred_at=now)
            sends.append(await self._producer.send(topics.OUTCOMES.name, outcome.to_bytes(),
                                                   key=d.encode()))
        await asyncio.gather(*sends)
        await self._learning.forget_due(due)
        return len(sends)

    async def run(self) -> None:
        while True:
            try:
                swept = await self.sweep(datetime.now(UTC))
                if swept:
                    log.info("outcomes_ignored", count=swept)
            except Exception as exc:  # Redis or Kafka down: try again next round
                log.warning("ignored_sweep_failed", error=repr(exc))
            await asyncio.sleep(self._interval)


def make_consumer(bootstrap: str, group_id: str) -> AIOKafkaConsumer:
    return AIOKafkaConsumer(
        topics.OUTCOMES.name, topics.DECISIONS.name, topics.TOUCHPOINTS.name,
        bootstrap_servers=bootstrap, group_id=group_id, client_id="rapport-next-action",
        enable_auto_commit=False, auto_offset_reset="earliest")

