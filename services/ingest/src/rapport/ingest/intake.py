"""The ingest use case: validate each message, drop resends, publish the rest
durably, and account for every message in the answer and the metrics."""

from __future__ import annotations

import asyncio
import time
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import structlog
from prometheus_client import Counter, Gauge

from . import dedup
from .domain import BatchContext, Rejection, touchpoint_body
from .publisher import TouchpointPublisher
from .sealing import IngestSeals
from .settings import IngestSettings, Source
from .store import Claim, DedupStore

log = structlog.get_logger(__name__)

MESSAGES = Counter("rapport_ingest_messages_total", "Messages by outcome and reason",
                   ["source", "outcome", "reason"])
IN_FLIGHT = Gauge("rapport_ingest_requests_in_flight", "Requests being ingested")


Body = dict[str, Any]
"""A touchpoint as its JSON object (:func:`~rapport.ingest.domain.touchpoint_body`)."""


class Unavailable(Exception):
    """Nothing was accepted; the client should retry after ``retry_after`` seconds."""

    def __init__(self, message: str, retry_after: int = 5) -> None:
        super().__init__(message)
        self.retry_after = retry_after


@dataclass(frozen=True)
class Outcome:
    accepted: int
    duplicates: int
    rejected: list[Rejection]


class Intake:
    def __init__(self, settings: IngestSettings, publisher: TouchpointPublisher,
                 dedup_store: DedupStore, seals: IngestSeals) -> None:
        self._seals = seals
        self._settings = settings
        self._publisher = publisher
        self._dedup = dedup_store
        self._settling: set[asyncio.Task[None]] = set()

    async def ingest(self, messages: list[Any], source: Source, *,
                     batch_context: BatchContext | None = None,
                     batch_sent_at: datetime | None = None) -> Outcome:
        with IN_FLIGHT.track_inprogress():
            received = datetime.now(UTC)
            accepted: list[Body] = []
            rejected: list[Rejection] = []
            raw_rejected: list[Any] = []
            skew = timedelta(seconds=self._settings.max_future_skew_s)
            for i, raw in enumerate(messages):
                try:
                    result = touchpoint_body(raw, index=i, source=source, received_at=received,
                                             batch_context=batch_context,
                                             batch_sent_at=batch_sent_at,
                                             max_message_bytes=self._settings.max_message_bytes,
                                             max_future_skew=skew)
                except Exception:  # a validation bug must not fail the rest of the batch
                    log.exception("message_validation_failed", index=i)
                    result = Rejection(i, None, ["message: could not be validated"],
                                       "unreadable")
                if isinstance(result, Rejection):
                    rejected.append(result)
                    raw_rejected.append(raw)
                else:
                    accepted.append(result)

            fresh, slots, duplicates = await self._claim(accepted, source.source, received)
            records, letters = await self._sealed(fresh, slots, rejected, raw_rejected,
                                                  source.source)
            sending = asyncio.create_task(self._publisher.publish(records, letters))
            done, _ = await asyncio.wait({sending}, timeout=self._settings.ack_timeout_s)
            if not done:
                # Kafka may still acknowledge these: keep the claims until we know, so the
                # client's retry waits for the answer instead of publishing a second copy.
                task = asyncio.create_task(self._settle(sending, slots))
                self._settling.add(task)
                task.add_done_callback(self._settling.discard)
                raise Unavailable("Kafka did not acknowledge in time")
            complete = await self._settle(sending, slots)
            if not complete:
                raise Unavailable("Kafka did not acknowledge every message")

            MESSAGES.labels(source.source, "accepted", "").inc(len(fresh))
            if duplicates:
                MESSAGES.labels(source.source, "deduplicated", "").inc(duplicates)
            for r in rejected:
                MESSAGES.labels(source.source, "rejected", r.reason).inc()
            return Outcome(accepted=len(accepted), duplicates=duplicates, rejected=rejected)

    async def _sealed(self, fresh: list[Body], slots: list[dedup.Slot],
                      rejected: list[Rejection], raw_rejected: list[Any], source: str,
                      ) -> tuple[list[tuple[bytes, bytes]], list[bytes]]:
        """The records to publish, personal fields sealed under their person's key;
        nothing is published when the key store cannot answer."""
        try:
            records = await self._seals.touchpoints(fresh)
            letters = await self._seals.letters(
                [{"source": source, "index": r.index, "messageId": r.message_id,
                  "reason": r.reason, "errors": r.errors} for r in rejected], raw_rejected)
        except Exception as exc:  # Redis down: nothing was published
            await self._release(slots)
            raise Unavailable(f"key store unavailable: {type(exc).__name__}") from exc
        return records, letters

    async def _claim(self, accepted: list[Body], source: str, now: datetime,
                     ) -> tuple[list[Body], list[dedup.Slot], int]:
        """Keep the messages not seen before; wait out concurrent claims of the same ones."""
        unique: dict[str, Body] = {}
        for tp in accepted:
            unique.setdefault(tp["message_id"], tp)
        slot_of = dedup.slots(source, unique, now, self._settings.dedup_shards)
        waiting = list(unique.items())
        fresh: list[tuple[str, Body]] = []
        deadline = time.monotonic() + self._settings.ack_timeout_s
        try:
            while waiting:
                claims = await self._dedup.claim([slot_of[mid] for mid, _ in waiting])
                fresh.extend(tp for tp, c in zip(waiting, claims, strict=True)
                             if c is Claim.CLAIMED)
                waiting = [tp for tp, c in zip(waiting, claims, strict=True)
                           if c is Claim.PENDING]
                if waiting:
                    if time.monotonic() > deadline:
                        raise Unavailable("the same messages are being ingested by another "
                                          "request; retry", retry_after=1)
                    await asyncio.sleep(0.05)
        except Unavailable:
            await self._release([slot_of[mid] for mid, _ in fresh])
            raise
        except Exception as exc:  # Redis down: we cannot promise not to publish twice
            await self._release([slot_of[mid] for mid, _ in fresh])
            raise Unavailable(f"deduplication store unavailable: {type(exc).__name__}") from exc
        return [tp for _, tp in fresh], [slot_of[mid] for mid, _ in fresh], \
            len(accepted) - len(fresh)

    async def _settle(self, sending: asyncio.Task[tuple[list[BaseException | None], bool]],
                      slots: list[dedup.Slot]) -> bool:
        """Remember what Kafka acknowledged, forget the rest; True if all of it was."""
        try:
            outcomes, letters_ok = await sending
        except Exception:  # the sends themselves failed: nothing is known to be published
            log.warning("kafka_send_failed", messages=len(slots))
            await self._release(slots)
            return False
        ok = [s for s, err in zip(slots, outcomes, strict=True) if err is None]
        failed = [s for s, err in zip(slots, outcomes, strict=True) if err is not None]
        try:
            await self._dedup.confirm(ok)
        except Exception:  # published already; a resend may be published again
            log.exception("dedup_confirm_failed", messages=len(ok))
        await self._release(failed)
        return not failed and letters_ok

    async def close(self) -> None:
        """Let in-flight deliveries settle their claims before shutting down."""
        if self._settling:
            await asyncio.wait(self._settling, timeout=self._settings.ack_timeout_s * 2)

    async def _release(self, slots: list[dedup.Slot]) -> None:
        try:
            await self._dedup.release(slots)
        except Exception:  # the claims go stale by themselves
            log.warning("dedup_release_failed", messages=len(slots))
