"""Stage 2's work on one micro-batch: the steps of the profiles a partition owns,
folded in order, one handler per step kind, into the batch's effects.

``FoldBatch`` holds what a batch changed (profiles, timelines, hand-overs, demand,
records to publish); :class:`~rapport.profile.streams.ProfileFolder` loads it, stores
it and publishes it. In careful mode (a record that failed alone) every step folds
into a copy, so a step that fails leaves its profile as it was and is set aside.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

import orjson
from aiokafka import AIOKafkaProducer

from rapport.shared import topics
from rapport.shared.events import ProfileStep, StepKind, Touchpoint
from rapport.shared.profiles import CustomerProfile

from . import domain, limits, merging, segments
from .batches import PROCESSED, Record, StepOutbox
from .demand.facts import Applied
from .store import BatchEffects, ProfileStore, timeline_entry


@dataclass
class Origin:
    """Where a step came from: its record (for a dead letter), its demand clock, and the
    step as it was on Kafka (personal fields sealed: what is forwarded or set aside)."""

    record: Record
    clock: str
    raw: dict[str, Any] = field(default_factory=dict)

    @property
    def source(self) -> str:
        """The touchpoints partition the step was resolved from ("" when unknown)."""
        origin = self.raw.get("origin")
        return str(origin) if isinstance(origin, int) else ""

    def sealed_bytes(self) -> bytes:
        return orjson.dumps(self.raw)


@dataclass
class FoldBatch:
    store: ProfileStore
    producer: AIOKafkaProducer
    forward: StepOutbox
    policy: domain.FoldPolicy
    now: datetime
    state: dict[str, CustomerProfile | None]
    moved: dict[str, str]
    erased: dict[str, int]
    careful: bool = False
    timeline_length: int = 100
    fx: BatchEffects = field(default_factory=BatchEffects)
    sends: list[Awaitable[object]] = field(default_factory=list)
    changed: set[str] = field(default_factory=set)
    applied: list[Touchpoint] = field(default_factory=list)
    demand: list[Applied] = field(default_factory=list)
    gone: dict[str, list[str]] = field(default_factory=dict)
    """Profiles handed over in this batch -> their categories (left demand audiences)."""
    sources: dict[str, list[tuple[Origin, ProfileStep]]] = field(default_factory=dict)
    before: dict[str, list[str]] = field(default_factory=dict)
    handovers: list[ProfileStep] = field(default_factory=list)
    """Hand-overs to forward once sealed under the absorbed profile's key."""
    late: list[tuple[str, bytes]] = field(default_factory=list)
    """Steps of profiles handed over, forwarded to their survivor behind this batch's
    hand-overs: a resend forwarded ahead of the hand-over carrying its original would
    be counted twice."""
    updates: dict[str, dict[str, Any]] = field(default_factory=dict)
    """Profile-updates bodies to publish once their personal fields are sealed."""

    def __post_init__(self) -> None:
        self.before = {pid: (p.segments if p else []) for pid, p in self.state.items()}

    async def apply(self, step: ProfileStep, origin: Origin) -> None:
        pid = step.profile_id
        if pid in self.erased and (step.touchpoint is None or
                                   step.touchpoint.received_at.timestamp() * 1000
                                   <= self.erased[pid]):
            PROCESSED.labels("fold", "erased").inc()
            return
        if pid in self.moved:
            if step.kind is not StepKind.MERGE_OUT:  # a repeated hand-over is dropped
                into = self.moved[pid]
                self.late.append((into, orjson.dumps({**origin.raw, "profile_id": into})))
                PROCESSED.labels("fold", "forwarded").inc()
            return
        handler = _HANDLERS.get(step.kind)
        if handler is not None:
            self.sources.setdefault(pid, []).append((origin, step))
            await handler(self, step, origin)

    async def _touchpoint(self, step: ProfileStep, origin: Origin) -> None:
        tp, pid = step.touchpoint, step.profile_id
        if tp is None:
            return
        current = self.state[pid]
        fresh = current is None or domain.message_fingerprint(tp) not in \
            current.recent_message_ids  # a resend adds no demand
        fold = domain.apply if self.careful else domain.apply_owned  # in place: loaded alone
        self.state[pid] = fold(current, tp, customer_id=pid, processed_at=self.now,
                               policy=self.policy)
        if fresh:
            self.demand.append(Applied(origin.clock, tp, pid, origin.record.offset,
                                       origin.source))
        self.fx.timelines.setdefault(pid, []).append(timeline_entry(tp))
        self.changed.add(pid)
        self.applied.append(tp)

    async def _merge_out(self, step: ProfileStep, origin: Origin) -> None:
        pid, into = step.profile_id, step.into
        if not into:
            return
        # Even an empty profile is handed over, so the survivor records the merge
        # whatever the timing (a repeated hand-over is also recognised there).
        profile = self.state.get(pid) or CustomerProfile(customer_id=pid)
        timeline = [*await self.store.timeline_entries(pid), *self.fx.timelines.pop(pid, [])]
        self.handovers.append(ProfileStep(
            kind=StepKind.MERGE_IN, profile_id=into, absorbed_id=pid,
            absorbed=profile.model_dump(mode="json"),
            timeline=limits.newest_entries(timeline, self.timeline_length), cause=step.cause))
        self.state[pid] = None
        self.changed.discard(pid)
        self.gone[pid] = list(profile.affinities)
        self.fx.handed_over[pid] = into
        self.moved[pid] = into
        for name in self.before.get(pid, []):
            self.fx.left.setdefault(name, set()).add(pid)
        self.sends.append(self.producer.send(topics.PROFILE_UPDATES.name, None,
                                             key=pid.encode()))

    async def _merge_in(self, step: ProfileStep, origin: Origin) -> None:
        pid = step.profile_id
        if step.absorbed is None:
            return
        absorbed = CustomerProfile.model_validate(step.absorbed)
        current = self.state[pid] or CustomerProfile(customer_id=pid)
        if absorbed.customer_id in current.merged_from:
            return
        self.state[pid] = merging.merge(current, absorbed, processed_at=self.now,
                                       policy=self.policy)
        self.fx.timelines.setdefault(pid, []).extend(
            (score, member) for score, member in step.timeline or [])
        self.changed.add(pid)

    def drop(self, pid: str) -> list[tuple[Origin, ProfileStep]]:
        """Forget what this batch did to a profile; returns the steps it came from."""
        self.changed.discard(pid)
        self.fx.timelines.pop(pid, None)
        self.demand = [a for a in self.demand if a.profile_id != pid]
        dropped = {id(s.touchpoint) for _, s in self.sources.get(pid, [])
                   if s.touchpoint is not None}
        self.applied = [tp for tp in self.applied if id(tp) not in dropped]
        return self.sources.pop(pid, [])

    def finish(self, segment_defs: list[segments.Segment],
               on_unstorable: Callable[[str, Exception], None]) -> None:
        """Segments, encoded profiles and the records to publish for every changed profile.
        A profile that cannot be encoded within the limits is passed to ``on_unstorable``
        (careful mode) or fails the batch."""
        for pid in sorted(self.changed):
            profile = self.state[pid]
            assert profile is not None
            profile.segments = segments.memberships(profile, self.now, segment_defs)
            try:
                stored, _, body = limits.encoded_with_body(profile)
            except Exception as exc:
                if not self.careful:
                    raise
                on_unstorable(pid, exc)
                continue
            self.fx.profiles[pid] = profile
            self.fx.encoded[pid] = stored
            self.updates[pid] = body
            old, new = set(self.before.get(pid, [])), set(profile.segments)
            for name, kind in [*((n, "entered") for n in new - old),
                               *((n, "exited") for n in old - new)]:
                (self.fx.joined if kind == "entered" else self.fx.left).setdefault(
                    name, set()).add(pid)
                self.sends.append(self.producer.send(topics.SEGMENT_EVENTS.name, orjson.dumps(
                    {"type": kind, "segment": name, "profile_id": pid,
                     "at": self.now.isoformat()}), key=pid.encode()))


_HANDLERS: dict[StepKind, Callable[[FoldBatch, ProfileStep, Origin], Awaitable[None]]] = {
    StepKind.TOUCHPOINT: FoldBatch._touchpoint,
    StepKind.MERGE_OUT: FoldBatch._merge_out,
    StepKind.MERGE_IN: FoldBatch._merge_in,
}
