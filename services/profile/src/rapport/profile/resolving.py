"""Stage 1 of the profile service: touchpoints (sealed, keyed by their person's
fingerprint) resolved to profile ids in Redis, merges decided, and the stream re-keyed
by profile id onto ``rapport.touchpoints.resolved.v1``, each record packing, in order,
the steps of one micro-batch bound for one partition."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import orjson
import structlog
from aiokafka import AIOKafkaProducer
from prometheus_client import Counter
from pydantic import ValidationError

from rapport.shared import keys, topics
from rapport.shared.deadletter import DeadLetters
from rapport.shared.events import ProfileStep, StepKind, Touchpoint
from rapport.shared.sealing import TouchpointSeals

from . import identities
from .batches import (
    FRESHNESS,
    PROCESSED,
    OffsetGuard,
    Quarantine,
    Record,
    StepOutbox,
    acked,
    isolating,
    reason_of,
    retrying,
)
from .identity import IdentityStore, ResolveRequest
from .store import BatchEffects, ProfileStore

log = structlog.get_logger(__name__)

MERGES = Counter("rapport_profile_merges_total", "Profiles merged into another")
REFUSED = Counter("rapport_profile_links_refused_total", "Links refused by the over-merge guard")


class IdentityResolver:
    """Stage 1: touchpoints -> profile ids, merges decided, stream re-keyed."""

    def __init__(self, identities: IdentityStore, store: ProfileStore,
                 producer: AIOKafkaProducer, seals: TouchpointSeals,
                 resolved_topic: str = topics.RESOLVED.name) -> None:
        self._resolved = resolved_topic
        self._seals = seals
        self._identities = identities
        self._store = store
        self._producer = producer
        self.guard = OffsetGuard(store, "resolve")
        self._quarantine = Quarantine(DeadLetters(producer, "resolve"), store, self.guard,
                                      "resolve")

    async def handle_batch(self, records: list[Record]) -> None:
        """Apply a batch, whatever it holds: Redis or Kafka failing is waited out, a
        record failing on its own is set aside on the dead-letter topic."""
        await retrying(lambda: isolating(records, self._attempt, self._quarantine),
                       "resolve", self.guard.forget)

    async def _attempt(self, records: list[Record], careful: bool) -> None:
        fresh = await self.guard.fresh(records)
        objs: list[tuple[dict[str, Any], Record]] = []
        for r in fresh:
            obj = _json_object(r.value)
            if obj is None:
                await self._quarantine.record(r, "undecodable touchpoint: not a JSON object",
                                              commit=False)
                continue
            objs.append((obj, r))
        decoded: list[tuple[Touchpoint, Record]] = []
        for opened, (_, r) in zip(await self._seals.open([o for o, _ in objs]), objs,
                                  strict=True):
            if opened is None:  # its person's key was destroyed: erased
                PROCESSED.labels("resolve", "erased").inc()
                continue
            try:
                decoded.append((Touchpoint.model_validate(opened), r))
            except ValidationError as exc:
                await self._quarantine.record(r, f"undecodable touchpoint: {reason_of(exc)}",
                                              commit=False)
        resolutions = await self._identities.resolve_many([ResolveRequest(
            identities.founder(tp), identities.identities_of(tp),
            int(tp.received_at.timestamp() * 1000), tp.message_id,
            keys.resolve_log(self._store.group, r.topic, r.partition), r.offset,
        ) for tp, r in decoded])
        outbox = StepOutbox(self._producer, self._resolved)
        sends, events = [], []
        for (tp, record), res in zip(decoded, resolutions, strict=True):
            if res.status == "unidentified":
                await self._quarantine.record(
                    record, "no identifier that may identify a person", commit=False)
                continue
            if res.profile_id is None:
                PROCESSED.labels("resolve", res.status).inc()
                continue
            outbox.add(ProfileStep(kind=StepKind.TOUCHPOINT, profile_id=res.route
                                   or res.profile_id, origin=record.partition),
                       record.value)
            for gone in res.refused:
                REFUSED.inc()
                events.append({"type": "link_refused", "profile_id": res.profile_id,
                               "other_profile_id": gone, "message_id": tp.message_id,
                               "at": tp.received_at.isoformat()})
        sends.extend(await outbox.sends())
        for event in events:
            sends.append(self._producer.send(topics.IDENTITY_EVENTS.name, orjson.dumps(event),
                                             key=event["profile_id"].encode()))
        await acked(sends)
        PROCESSED.labels("resolve", "applied").inc(len(decoded))
        await self.drain_outbox()
        offsets = OffsetGuard.offsets(fresh)
        if offsets:
            done: dict[tuple[str, int], list[int]] = {}
            for r in fresh:
                done.setdefault((r.topic, r.partition), []).append(r.offset)
            await self._store.commit(BatchEffects(offsets=offsets, resolved=done))
            self.guard.advance(offsets)
        now = datetime.now(UTC)
        for tp, _ in decoded:
            FRESHNESS.labels("resolve").observe(max(0.0, (now - tp.received_at)
                                                    .total_seconds()))

    async def drain_outbox(self) -> None:
        """Publish decided merges (the hand-over step and the merge event), then forget them."""
        pending = await self._identities.outbox()
        if not pending:
            return
        outbox = StepOutbox(self._producer, self._resolved)
        sends = []
        for gone, (survivor, message_id) in pending.items():
            outbox.add(ProfileStep(kind=StepKind.MERGE_OUT, profile_id=gone, into=survivor,
                                   cause={"message_id": message_id}))
            event = {"type": "merged", "profile_id": survivor, "absorbed_id": gone,
                     "cause": {"message_id": message_id}}
            sends.append(self._producer.send(topics.IDENTITY_EVENTS.name, orjson.dumps(event),
                                             key=survivor.encode()))
        sends.extend(await outbox.sends())
        await acked(sends)
        MERGES.inc(len(pending))
        await self._identities.clear_outbox(list(pending))


def _json_object(raw: bytes) -> dict[str, Any] | None:
    try:
        value = orjson.loads(raw)
    except orjson.JSONDecodeError:
        return None
    return value if isinstance(value, dict) else None
