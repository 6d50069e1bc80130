"""Kafka side of the profile service: two stages on micro-batches
(:mod:`rapport.shared.batching`).

``resolve_identities`` (:class:`~rapport.profile.resolving.IdentityResolver`) resolves
each touchpoint's identifiers to one profile id in Redis, merging profiles that turn
out to be one person, and re-keys the stream by profile id onto
``rapport.touchpoints.resolved.v1``: each record there packs, in order, the
steps of one micro-batch bound for one partition (the partition owning their
profiles), so stage 2 decodes one record per batch, not one per event.

``fold_profiles`` (those steps) owns each person's state on exactly one
partition: it folds touchpoints, hands merged profiles
over, evaluates segments, publishes every change and tells demand counting what it
applied (:mod:`~rapport.profile.demand.facts`). Each partition's share of a poll is
stored in a transaction of its own (its keys share one Redis Cluster slot).

Both work a micro-batch at a time and are exactly once in effect: the Kafka
offsets a batch reflects are stored in Redis together with its effects, records
are published before those effects are stored, and re-published records are
recognised (message fingerprints, merge markers) when they come round again. A
record that fails on its own is set aside on the stream dead-letter topic
(:func:`~rapport.profile.batches.isolating`); Redis or Kafka failing is waited out.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime
from typing import Any

import orjson
import structlog
from aiokafka import AIOKafkaProducer, ConsumerRecord, TopicPartition
from pydantic import ValidationError

from rapport.shared import sealing, topics
from rapport.shared.batching import BatchLoop, Consumer, Handler
from rapport.shared.deadletter import DeadLetters
from rapport.shared.events import ProfileStep
from rapport.shared.fencing import Fence, Fenced
from rapport.shared.privacy import Fingerprints
from rapport.shared.vault import Sealer

from . import domain, orders, segments
from .batches import (
    FRESHNESS,
    PROCESSED,
    TRANSIENT,
    OffsetGuard,
    Quarantine,
    Record,
    StepOutbox,
    acked,
    isolating,
    partition_of,
    reason_of,
    retrying,
)
from .demand import facts
from .folding import FoldBatch, Origin
from .identity import IdentityStore
from .resolving import IdentityResolver
from .store import ProfileStore

log = structlog.get_logger(__name__)

__all__ = ["PROCESSED", "IdentityResolver", "ProfileFolder", "build_stages", "partition_of"]



class ProfileFolder:
    """Stage 2: each profile's steps, on the partition that owns the profile."""

    def __init__(self, store: ProfileStore, identities: IdentityStore,
                 producer: AIOKafkaProducer, segment_defs: list[segments.Segment],
                 policy: domain.FoldPolicy = domain.DEFAULT_POLICY,
                 resolved_topic: str = topics.RESOLVED.name,
                 demand_facts: str | None = None, timeline_length: int = 100, *,
                 seals: Sealer, fingerprints: Fingerprints) -> None:
        """``demand_facts``: the topic the batches' demand facts go to (None: none)."""
        self._sealer = seals
        self._fp = fingerprints
        self._resolved = resolved_topic
        self._facts = demand_facts
        self._half_life = policy.affinity_half_life_days
        self._store = store
        self._identities = identities
        self._producer = producer
        self._segments = segment_defs
        self._policy = policy
        self._timeline_length = timeline_length
        self.guard = OffsetGuard(store, "fold")
        self._quarantine = Quarantine(DeadLetters(producer, "fold"), store, self.guard, "fold")

    def forget(self) -> None:
        """Partitions may have moved (or a batch failed): forget what was cached."""
        self.guard.forget()

    async def handle_batch(self, records: list[Record]) -> None:
        """Apply a batch, whatever it holds, one partition at a time concurrently (each
        stored in its own transaction: its keys share a slot): Redis or Kafka failing is
        waited out, a step or record failing on its own is set aside on the dead-letter
        topic. The first failure of a partition is raised once all are done."""
        parts: dict[int, list[Record]] = {}
        for r in records:
            parts.setdefault(r.partition, []).append(r)
        done = await asyncio.gather(*(
            retrying(lambda rs=rs: isolating(rs, self._attempt, self._quarantine),
                     "fold", self.forget) for rs in parts.values()), return_exceptions=True)
        for outcome in done:
            if isinstance(outcome, BaseException):
                raise outcome

    async def _steps(self, fresh: list[Record]) -> list[tuple[ProfileStep, Origin]]:
        """The batch's steps, their sealed parts opened (one round trip each for the
        touchpoints and the hand-overs); those of erased people are left out."""
        raws: list[Origin] = []
        for r in fresh:
            read = _json_steps(r.value)
            if read is None:
                await self._quarantine.record(r, "undecodable steps: not a JSON array of "
                                                 "step objects", commit=False)
                continue
            raws.extend(Origin(r, f"{r.topic}:{r.partition}", raw) for raw in read)
        inner = [o for o in raws if isinstance(o.raw.get("touchpoint"), dict)]
        opened_tps = await self._sealer.open_many([o.raw["touchpoint"] for o in inner])
        tps = {id(o): tp for o, tp in zip(inner, opened_tps, strict=True)}
        opened_steps = await self._sealer.open_many([o.raw for o in raws])
        steps: list[tuple[ProfileStep, Origin]] = []
        for origin, body in zip(raws, opened_steps, strict=True):
            tp = tps.get(id(origin), body and body.get("touchpoint"))
            if body is None or (body.get("touchpoint") is not None and tp is None):
                PROCESSED.labels("fold", "erased").inc()
                continue
            try:
                steps.append((ProfileStep.model_validate({**body, "touchpoint": tp}), origin))
            except ValidationError as exc:
                await self._quarantine.step(origin.record, origin.sealed_bytes(),
                                            f"undecodable step: {reason_of(exc)}")
        return steps

    async def _attempt(self, records: list[Record], careful: bool) -> None:
        try:
            await self._fold(records, careful)
        except Exception:
            self.forget()  # caches may hold what this attempt did not store
            raise

    async def _fold(self, records: list[Record], careful: bool) -> None:
        fresh = await self.guard.fresh(records)
        steps = await self._steps(fresh)
        ids = sorted({s.profile_id for s, _ in steps})
        # Profiles already handed over to their survivor (their merge_out was folded):
        # what still comes for them is forwarded one hop, behind the hand-over itself.
        # A profile whose merge was decided but not yet handed over keeps folding: its
        # hand-over will carry everything, so nothing can reach the survivor twice.
        batch = FoldBatch(
            store=self._store, producer=self._producer,
            forward=StepOutbox(self._producer, self._resolved), policy=self._policy,
            now=datetime.now(UTC), state=dict(zip(ids, await self._store.load_many(ids),
                                                  strict=True)),
            moved=await self._store.handed_over(ids),
            erased=await self._identities.erased_profiles(ids), careful=careful,
            timeline_length=self._timeline_length)
        for step, origin in steps:
            try:
                await batch.apply(step, origin)
            except TRANSIENT:
                raise
            except Exception as exc:
                if not careful:
                    raise
                await self._quarantine.step(origin.record, origin.sealed_bytes(),
                                            reason_of(exc))
        unstorable: list[tuple[str, Exception]] = []
        batch.finish(self._segments, lambda pid, exc: unstorable.append((pid, exc)))
        for pid, exc in unstorable:
            for origin, _step in batch.drop(pid):
                await self._quarantine.step(origin.record, origin.sealed_bytes(),
                                            f"profile cannot be stored: {reason_of(exc)}")
        await self._seal_and_send(batch)
        fx = batch.fx
        self._send_facts(batch, fresh)
        self._send_orders(batch)
        batch.sends.extend(await batch.forward.sends())
        await acked(batch.sends)
        # An erasure that landed while this batch was folding wins over it.
        for pid, at in (await self._identities.erased_profiles(list(fx.profiles))).items():
            if at != batch.erased.get(pid):
                fx.profiles.pop(pid, None)
                fx.encoded.pop(pid, None)
                fx.timelines.pop(pid, None)
        fx.offsets = OffsetGuard.offsets(fresh)
        await self._store.commit(fx)
        self.guard.advance(fx.offsets)
        # Stage 1 routes by a copy in {ids}, written once the hand-over is stored (and
        # again whenever a late step shows a copy missing): until then it routes to the
        # merged-away profile, whose late steps this stage forwards behind the hand-over.
        copies = {**{pid: into for pid, into in batch.moved.items() if batch.late},
                  **fx.handed_over}
        if copies:
            await self._identities.mark_handed_over(copies)
        PROCESSED.labels("fold", "applied").inc(len(batch.applied))
        done = datetime.now(UTC)
        for tp in batch.applied:
            FRESHNESS.labels("fold").observe(max(0.0, (done - tp.received_at)
                                                  .total_seconds()))


    def _send_facts(self, batch: FoldBatch, fresh: list[Record]) -> None:
        """What demand counts of this batch (one partition's), ahead of its commit."""
        if self._facts is None or not fresh:
            return
        member = f"{fresh[0].topic}:{fresh[0].partition}"
        told = facts.of_batch(member, batch.demand, batch.fx.profiles, batch.gone,
                              self._half_life, before=batch.before, now=batch.now)
        if told:
            batch.sends.extend(self._producer.send(self._facts, record, key=member.encode())
                               for record in facts.encode(told))

    def _send_orders(self, batch: FoldBatch) -> None:
        """The batch's orders and refunds, for attribution (ahead of its commit: a
        redelivered batch sends them again, and attribution counts each message once)."""
        for f in orders.facts_of(((a.profile_id, a.touchpoint) for a in batch.demand),
                                 self._fp):
            batch.sends.append(self._producer.send(topics.ORDER_FACTS.name, f.to_bytes(),
                                                   key=f.customer.encode()))

    async def _seal_and_send(self, batch: FoldBatch) -> None:
        """Hand-overs and profile updates leave with their personal fields sealed."""
        handovers = [orjson.loads(h.to_bytes()) for h in batch.handovers]
        sealed = await self._sealer.seal_many(
            [(sealing.profile_kid(self._fp, h.absorbed_id or h.profile_id), body)
             for h, body in zip(batch.handovers, handovers, strict=True)],
            sealing.HANDOVER_PERSONAL)
        for h, body in zip(batch.handovers, sealed, strict=True):
            batch.forward.add_encoded(h.profile_id, orjson.dumps(body))
        for into, step in batch.late:  # behind the hand-overs
            batch.forward.add_encoded(into, step)
        pids = list(batch.updates)
        bodies = await self._sealer.seal_many(
            [(sealing.profile_kid(self._fp, pid), batch.updates[pid]) for pid in pids],
            sealing.PROFILE_PERSONAL)
        for pid, body in zip(pids, bodies, strict=True):
            batch.sends.append(self._producer.send(topics.PROFILE_UPDATES.name,
                                                   orjson.dumps(body), key=pid.encode()))


def _json_steps(raw: bytes) -> list[dict[str, Any]] | None:
    """The step objects of a re-keyed record (a JSON array of them, or one object)."""
    try:
        value = orjson.loads(raw)
    except orjson.JSONDecodeError:
        return None
    steps = [value] if isinstance(value, dict) else value
    if not isinstance(steps, list) or not all(isinstance(s, dict) for s in steps):
        return None
    return steps


def build_stages(consumer: Consumer, *, group_id: str, resolver: IdentityResolver,
                 folder: ProfileFolder, touchpoints_topic: str, resolved_topic: str,
                 fence: Fence, max_batch: int = 2000) -> BatchLoop:
    """Both stages on one consumer of the group: each poll's touchpoints to stage 1 and
    its re-keyed steps to stage 2, concurrently; caches forgotten when partitions move,
    and a new owner epoch taken for each partition assigned (the stores check it)."""

    def records(batch: list[ConsumerRecord]) -> list[Record]:
        return [Record(r.topic, r.partition, r.offset, r.value) for r in batch]

    def forget() -> None:
        resolver.guard.forget()
        folder.forget()

    def stage(handle: Callable[[list[Record]], Awaitable[None]]) -> Handler:
        async def handled(batch: list[ConsumerRecord]) -> None:
            try:
                await handle(records(batch))
            except Fenced:  # what was cached may be the new owner's now
                forget()
                raise
        return handled

    async def assigned(partitions: set[TopicPartition]) -> None:
        forget()
        await retrying(lambda: fence.acquire(partitions), "fence")

    async def revoked(partitions: set[TopicPartition]) -> None:
        forget()
        fence.release(partitions)

    return BatchLoop(consumer, {touchpoints_topic: stage(resolver.handle_batch),
                                resolved_topic: stage(folder.handle_batch)},
                     group=group_id, on_assigned=assigned, on_revoked=revoked,
                     max_records=max_batch)
