"""Kafka side of the profile service: two faust-streaming agents.

``resolve_identities`` (touchpoints, keyed by raw identifier) resolves each
touchpoint's identifiers to one profile id in Redis, merging profiles that turn
out to be one person, and re-keys the stream by profile id onto
``rapport.touchpoints.resolved.v1``: each record there packs, in order, the
steps of one micro-batch bound for one partition (the partition owning their
profiles), so stage 2 pays faust's per-record cost once per batch, not per event.

``fold_profiles`` (those steps) owns each person's state on exactly one
partition: it folds touchpoints, hands merged profiles
over, evaluates segments and publishes every change.

Both work a micro-batch at a time and are exactly once in effect: the Kafka
offsets a batch reflects are stored in Redis together with its effects, records
are published before those effects are stored, and re-published records are
recognised (message fingerprints, merge markers) when they come round again.
"""

from __future__ import annotations

import asyncio
import zlib
from collections.abc import Awaitable
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

import faust
import orjson
import structlog
from aiokafka import AIOKafkaProducer
from prometheus_client import Counter, Histogram
from pydantic import ValidationError

from rapport.shared import keys, topics
from rapport.shared.events import ProfileStep, StepKind, Touchpoint, read_steps, step_records
from rapport.shared.profiles import CustomerProfile

from . import domain, segments
from .demand.stage import Applied, DemandStage
from .identity import IdentityStore, ResolveRequest
from .store import BatchEffects, ProfileStore, timeline_entry

log = structlog.get_logger(__name__)

PROCESSED = Counter("rapport_profile_records_total", "Records seen by the profile processors",
                    ["stage", "outcome"])
MERGES = Counter("rapport_profile_merges_total", "Profiles merged into another")
REFUSED = Counter("rapport_profile_links_refused_total", "Links refused by the over-merge guard")
LAG = Histogram("rapport_profile_freshness_seconds",
                "From ingest's receipt to the profile being stored",
                buckets=(.005, .01, .025, .05, .1, .25, .5, 1, 2.5, 5, 10, 30))


@dataclass(frozen=True)
class Record:
    topic: str
    partition: int
    offset: int
    value: bytes


class OffsetGuard:
    """Which records of a batch Redis already reflects (a redelivery after a crash)."""

    def __init__(self, store: ProfileStore, stage: str) -> None:
        self._store = store
        self._stage = stage
        self._applied: dict[tuple[str, int], int] = {}

    def forget(self) -> None:
        self._applied.clear()

    async def fresh(self, records: list[Record]) -> list[Record]:
        for key in {(r.topic, r.partition) for r in records} - self._applied.keys():
            self._applied[key] = await self._store.applied_offset(*key)
        fresh = [r for r in records if r.offset > self._applied[(r.topic, r.partition)]]
        if len(fresh) < len(records):
            PROCESSED.labels(self._stage, "redelivered").inc(len(records) - len(fresh))
        return fresh

    @staticmethod
    def offsets(records: list[Record]) -> dict[tuple[str, int], int]:
        out: dict[tuple[str, int], int] = {}
        for r in records:
            out[(r.topic, r.partition)] = max(r.offset, out.get((r.topic, r.partition), -1))
        return out

    def advance(self, offsets: dict[tuple[str, int], int]) -> None:
        self._applied.update(offsets)


def partition_of(profile_id: str, partitions: int) -> int:
    """The partition of the re-keyed stream that owns a profile (stable across processes)."""
    return zlib.crc32(profile_id.encode()) % partitions


class StepOutbox:
    """Steps bound for the re-keyed stream, packed per owning partition into few records."""

    def __init__(self, producer: AIOKafkaProducer, topic: str) -> None:
        self._producer = producer
        self._topic = topic
        self._partitions = 0
        self._pending: dict[int, list[bytes]] = {}
        self._steps: list[tuple[str, bytes]] = []

    def add(self, step: ProfileStep, touchpoint_json: bytes | None = None) -> None:
        self._steps.append((step.profile_id, step.to_bytes(touchpoint_json)))

    async def sends(self) -> list[Awaitable[object]]:
        """Send what was added (in order per partition); await the result to know it is sent."""
        if not self._steps:
            return []
        if not self._partitions:
            self._partitions = len(await self._producer.partitions_for(self._topic))
        by_partition: dict[int, list[bytes]] = {}
        for pid, encoded in self._steps:
            by_partition.setdefault(partition_of(pid, self._partitions), []).append(encoded)
        self._steps = []
        return [self._producer.send(self._topic, record, partition=partition)
                for partition, encoded in by_partition.items()
                for record in step_records(encoded)]


async def _acked(sends: list[Awaitable[object]]) -> None:
    futures = [await s for s in sends]
    await asyncio.gather(*futures)


class IdentityResolver:
    """Stage 1: touchpoints -> profile ids, merges decided, stream re-keyed."""

    def __init__(self, identities: IdentityStore, store: ProfileStore,
                 producer: AIOKafkaProducer, resolved_topic: str = topics.RESOLVED.name) -> None:
        self._resolved = resolved_topic
        self._identities = identities
        self._store = store
        self._producer = producer
        self.guard = OffsetGuard(store, "resolve")

    async def handle_batch(self, records: list[Record]) -> None:
        fresh = await self.guard.fresh(records)
        decoded: list[tuple[Touchpoint, Record]] = []
        for r in fresh:
            try:
                decoded.append((Touchpoint.from_bytes(r.value), r))
            except ValidationError:
                log.error("undecodable_touchpoint", partition=r.partition, offset=r.offset)
                PROCESSED.labels("resolve", "undecodable").inc()
        resolutions = await self._identities.resolve_many([ResolveRequest(
            tp.customer_key, domain.identities_of(tp), int(tp.received_at.timestamp() * 1000),
            tp.message_id, keys.resolve_log(self._store.group, r.topic, r.partition), r.offset,
        ) for tp, r in decoded])
        outbox = StepOutbox(self._producer, self._resolved)
        sends, events = [], []
        for (tp, record), res in zip(decoded, resolutions, strict=True):
            if res.profile_id is None:
                PROCESSED.labels("resolve", "erased").inc()
                continue
            outbox.add(ProfileStep(kind=StepKind.TOUCHPOINT, profile_id=res.profile_id),
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
        await _acked(sends)
        PROCESSED.labels("resolve", "applied").inc(len(decoded))
        await self.drain_outbox()
        offsets = OffsetGuard.offsets(fresh)
        if offsets:
            done: dict[tuple[str, int], list[int]] = {}
            for r in fresh:
                done.setdefault((r.topic, r.partition), []).append(r.offset)
            await self._store.commit(BatchEffects(offsets=offsets, resolved=done))
            self.guard.advance(offsets)

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
        await _acked(sends)
        MERGES.inc(len(pending))
        await self._identities.clear_outbox(list(pending))


class ProfileFolder:
    """Stage 2: each profile's steps, on the partition that owns the profile."""

    def __init__(self, store: ProfileStore, identities: IdentityStore,
                 producer: AIOKafkaProducer, segment_defs: list[segments.Segment],
                 policy: domain.FoldPolicy = domain.DEFAULT_POLICY,
                 resolved_topic: str = topics.RESOLVED.name,
                 demand: DemandStage | None = None) -> None:
        self._resolved = resolved_topic
        self._demand = demand
        self._store = store
        self._identities = identities
        self._producer = producer
        self._segments = segment_defs
        self._policy = policy
        self.guard = OffsetGuard(store, "fold")

    def forget(self) -> None:
        """Partitions may have moved: forget what was cached about them."""
        self.guard.forget()
        if self._demand is not None:
            self._demand.forget()

    async def handle_batch(self, records: list[Record]) -> None:
        fresh = await self.guard.fresh(records)
        steps: list[ProfileStep] = []
        origins: list[str] = []  # the partition each step came from (its demand clock)
        for r in fresh:
            try:
                read = read_steps(r.value)
                steps.extend(read)
                origins.extend([f"{r.topic}:{r.partition}"] * len(read))
            except ValidationError:
                log.error("undecodable_step", partition=r.partition, offset=r.offset)
                PROCESSED.labels("fold", "undecodable").inc()
        now = datetime.now(UTC)
        ids = sorted({s.profile_id for s in steps})
        # Profiles already handed over to their survivor (their merge_out was folded):
        # what still comes for them is forwarded one hop, behind the hand-over itself.
        # A profile whose merge was decided but not yet handed over keeps folding: its
        # hand-over will carry everything, so nothing can reach the survivor twice.
        moved = await self._store.handed_over(ids)
        erased = await self._identities.erased_profiles(ids)
        state: dict[str, CustomerProfile | None] = dict(
            zip(ids, await self._store.load_many(ids), strict=True))
        before = {pid: (p.segments if p else []) for pid, p in state.items()}
        fx = BatchEffects()
        forward = StepOutbox(self._producer, self._resolved)
        sends: list[Awaitable[object]] = []
        changed: set[str] = set()
        applied: list[Touchpoint] = []
        demand: list[Applied] = []
        gone: dict[str, list[str]] = {}  # profiles handed over -> their categories

        for step, origin in zip(steps, origins, strict=True):
            pid = step.profile_id
            if pid in erased and (step.touchpoint is None or
                                  step.touchpoint.received_at.timestamp() * 1000 <= erased[pid]):
                PROCESSED.labels("fold", "erased").inc()
                continue
            if pid in moved:
                if step.kind is not StepKind.MERGE_OUT:  # a repeated hand-over is dropped
                    forward.add(step.model_copy(update={"profile_id": moved[pid]}))
                    PROCESSED.labels("fold", "forwarded").inc()
                continue
            if step.kind is StepKind.TOUCHPOINT and step.touchpoint is not None:
                tp = step.touchpoint
                current = state[pid]
                if current is None or domain.message_fingerprint(tp) not in \
                        current.recent_message_ids:  # a resend adds no demand
                    demand.append(Applied(origin, tp, pid))
                # Loaded from Redis for this batch alone: folded in place.
                state[pid] = domain.apply_owned(state[pid], tp, customer_id=pid,
                                                processed_at=now, policy=self._policy)
                fx.timelines.setdefault(pid, []).append(timeline_entry(tp))
                changed.add(pid)
                applied.append(tp)
            elif step.kind is StepKind.MERGE_OUT and step.into:
                # Even an empty profile is handed over, so the survivor records the merge
                # whatever the timing (a repeated hand-over is also recognised there).
                profile = state.get(pid) or CustomerProfile(customer_id=pid)
                timeline = [*await self._store.timeline_entries(pid), *fx.timelines.pop(pid, [])]
                forward.add(ProfileStep(
                    kind=StepKind.MERGE_IN, profile_id=step.into, absorbed_id=pid,
                    absorbed=profile.model_dump(mode="json"), timeline=timeline,
                    cause=step.cause))
                state[pid] = None
                changed.discard(pid)
                gone[pid] = list(profile.affinities)
                fx.handed_over[pid] = step.into
                moved[pid] = step.into
                fx.left.update({s: {*fx.left.get(s, set()), pid} for s in before.get(pid, [])})
                sends.append(self._producer.send(topics.PROFILE_UPDATES.name, None,
                                                 key=pid.encode()))
            elif step.kind is StepKind.MERGE_IN and step.absorbed is not None:
                absorbed = CustomerProfile.model_validate(step.absorbed)
                current = state[pid] or CustomerProfile(customer_id=pid)
                if absorbed.customer_id in current.merged_from:
                    continue
                state[pid] = domain.merge(current, absorbed, processed_at=now,
                                          policy=self._policy)
                fx.timelines.setdefault(pid, []).extend(
                    (score, member) for score, member in step.timeline or [])
                changed.add(pid)

        for pid in changed:
            profile = state[pid]
            assert profile is not None
            profile.segments = segments.memberships(profile, now, self._segments)
            fx.profiles[pid] = profile
            sends.append(self._producer.send(topics.PROFILE_UPDATES.name, profile.to_bytes(),
                                             key=pid.encode()))
            old, new = set(before.get(pid, [])), set(profile.segments)
            for name, kind in [*((n, "entered") for n in new - old),
                               *((n, "exited") for n in old - new)]:
                (fx.joined if kind == "entered" else fx.left).setdefault(name, set()).add(pid)
                sends.append(self._producer.send(topics.SEGMENT_EVENTS.name, orjson.dumps(
                    {"type": kind, "segment": name, "profile_id": pid,
                     "at": now.isoformat()}), key=pid.encode()))
        sends.extend(await forward.sends())
        await _acked(sends)
        # An erasure that landed while this batch was folding wins over it.
        for pid, at in (await self._identities.erased_profiles(list(fx.profiles))).items():
            if at != erased.get(pid):
                fx.profiles.pop(pid, None)
                fx.timelines.pop(pid, None)
        demand_fx = None
        if self._demand is not None:
            demand_fx = await self._demand.effects(demand, fx.profiles, gone)
            fx.also.append(lambda tx: self._demand.stage(tx, demand_fx))
        fx.offsets = OffsetGuard.offsets(fresh)
        await self._store.commit(fx)
        self.guard.advance(fx.offsets)
        if demand_fx is not None:
            self._demand.committed(demand_fx)
        PROCESSED.labels("fold", "applied").inc(len(applied))
        done = datetime.now(UTC)
        for tp in applied:
            LAG.observe(max(0.0, (done - tp.received_at).total_seconds()))


def build_stream_app(*, bootstrap: str, group_id: str, resolver: IdentityResolver,
                     folder: ProfileFolder, datadir: Path, touchpoints_topic: str,
                     resolved_topic: str,
                     session_timeout_s: float = 30, max_batch: int = 500,
                     batch_window_s: float = 0.02) -> faust.App:
    (datadir / group_id).mkdir(parents=True, exist_ok=True)
    app = faust.App(
        group_id,
        broker=";".join(f"kafka://{h.strip()}" for h in bootstrap.split(",")),
        store="memory://",
        web_enabled=False,
        topic_allow_declare=False,
        topic_disable_leader=True,
        consumer_auto_offset_reset="earliest",
        broker_session_timeout=session_timeout_s,
        broker_heartbeat_interval=min(3.0, session_timeout_s / 3),
        autodiscover=False,
        datadir=str(datadir / group_id),
    )

    def source(name: str) -> faust.TopicT:
        return app.topic(name, key_type=bytes, value_type=bytes, key_serializer="raw",
                         value_serializer="raw")

    def records(events: list[faust.EventT]) -> list[Record]:
        return [Record(e.message.topic, e.message.partition, e.message.offset, e.value)
                for e in events]

    @app.agent(source(touchpoints_topic), name="resolve_identities")
    async def resolve_identities(stream: faust.StreamT) -> None:
        async for events in stream.take_events(max_batch, within=batch_window_s):
            await resolver.handle_batch(records(events))

    @app.agent(source(resolved_topic), name="fold_profiles")
    async def fold_profiles(stream: faust.StreamT) -> None:
        async for events in stream.take_events(max_batch, within=batch_window_s):
            await folder.handle_batch(records(events))

    @app.on_rebalance_complete.connect
    async def _rebalanced(sender: object, **_: object) -> None:
        resolver.guard.forget()
        folder.forget()

    return app
