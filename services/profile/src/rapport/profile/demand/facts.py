"""What stage 2 tells demand, so demand counts on its own consumer group: per batch of
one partition, the touchpoints the fold applied (resends left out), each with what it
contributes, and the audiences' changes, as one record on ``rapport.demand-facts.v1``.

Stage 2 publishes a batch's facts before storing the batch, so a batch done again
after a crash publishes them again; each fact carries the offset of the record it came
from, and demand counts a partition's facts only past the highest offset it has
counted (stored with its counts), so every fact counts once.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from typing import Any

import orjson

from rapport.shared.events import Touchpoint
from rapport.shared.profiles import CustomerProfile

from . import audience, reach
from .series import (
    DEMAND_PROPERTIES,
    Contribution,
    contribution_of,
    is_commerce,
    region_of,
)

FACTS_RECORD_BYTES = 256 * 1024
"""Well under the producer's 1 MiB request limit, whatever a batch holds."""


@dataclass(frozen=True)
class Applied:
    """A touchpoint the fold applied (not a resend), from record ``offset`` of
    partition ``member``."""

    member: str
    touchpoint: Touchpoint
    profile_id: str
    offset: int = -1
    source: str = ""
    """The upstream partition it came through (its clock: :func:`.clock.source_key`)."""


@dataclass(frozen=True)
class Fact:
    """One applied touchpoint: its times and, for a commerce event, what its demand is
    made of (computed by demand counting: stage 2 only picks the fields)."""

    offset: int
    event_s: float
    received_s: float
    event: str | None = None
    channel: str = ""
    region: str = ""
    segments: tuple[str, ...] = ()
    properties: dict[str, Any] = field(default_factory=dict)
    source: str = ""

    def contribution(self) -> Contribution:
        if self.event is None:
            return Contribution()
        return contribution_of(self.event, self.channel, self.properties, region=self.region,
                               segments=self.segments)


@dataclass
class FactBatch:
    member: str
    facts: list[Fact] = field(default_factory=list)
    audience_add: dict[str, dict[str, float]] = field(default_factory=dict)
    audience_remove: dict[str, set[str]] = field(default_factory=dict)
    reach_points: dict[str, reach.Point] = field(default_factory=dict)
    """Customer -> what their place in the region/channel/segment/everyone sets is
    computed from (by demand counting: :mod:`.reach`)."""
    reach_remove: dict[str, set[str]] = field(default_factory=dict)
    reach_gone: set[str] = field(default_factory=set)
    """Customers merged away: out of every reach set."""

    def __bool__(self) -> bool:
        return bool(self.facts or self.audience_add or self.audience_remove
                    or self.reach_points or self.reach_remove or self.reach_gone)

    def past(self, counted: int) -> FactBatch:
        """The facts from records past offset ``counted`` (audiences are idempotent)."""
        return FactBatch(self.member, [f for f in self.facts if f.offset > counted],
                         self.audience_add, self.audience_remove, self.reach_points,
                         self.reach_remove, self.reach_gone)


def of_batch(member: str, applied: Iterable[Applied],
             profiles: Mapping[str, CustomerProfile], gone: Mapping[str, Iterable[str]],
             half_life_days: float, *, before: Mapping[str, Iterable[str]] | None = None,
             now: datetime | None = None) -> FactBatch:
    """A batch's facts: ``profiles`` are its changed profiles (segments evaluated),
    ``gone`` the categories of the profiles it handed over, ``before`` the segments its
    profiles had before it (those left leave the reach sets)."""
    out = FactBatch(member, audience_add=audience.additions(profiles, half_life_days),
                    audience_remove=audience.removals(gone))
    regions: dict[str, set[str]] = {}
    for a in applied:
        tp = a.touchpoint
        fact = Fact(a.offset, tp.timestamp.timestamp(), tp.received_at.timestamp(),
                    source=a.source)
        if is_commerce(tp):
            profile = profiles.get(a.profile_id)
            fact = replace(fact, event=tp.event, channel=tp.channel.value,
                           region=region_of(tp, profile.traits if profile else None),
                           segments=tuple(sorted(set(profile.segments))) if profile else (),
                           properties={k: tp.properties[k] for k in DEMAND_PROPERTIES
                                       if k in tp.properties})
            if profile is not None:
                regions.setdefault(a.profile_id, set()).add(fact.region)
        out.facts.append(fact)
    out.reach_points = reach.points(profiles, regions, now or datetime.now(UTC))
    out.reach_remove = reach.removals(profiles, before or {})
    out.reach_gone = set(gone)
    return out


def _row(f: Fact) -> bytes:
    """``[offset, event_s, received_s]`` (+ event, channel, region, segments, properties
    for commerce), then the source when there is one."""
    row: list[Any] = [f.offset, f.event_s, f.received_s]
    if f.event is not None:
        row += [f.event, f.channel, f.region, f.segments, f.properties]
    if f.source:
        row.append(f.source)
    return orjson.dumps(row)


def encode(batch: FactBatch, limit: int = FACTS_RECORD_BYTES) -> list[bytes]:
    """A batch's facts as records of about ``limit`` bytes at most, in order. A record's
    facts are never split over two (demand counts by record offset), and the audiences
    come last, in records of their own when they do not fit."""
    member = orjson.dumps(batch.member)
    frame = len(b'{"member":,"facts":[]}') + len(member)
    records: list[bytes] = []
    rows: list[bytes] = []
    size = frame
    i, facts = 0, batch.facts
    while i < len(facts):
        j = i
        group = []
        while j < len(facts) and facts[j].offset == facts[i].offset:
            group.append(_row(facts[j]))
            j += 1
        grown = sum(len(r) + 1 for r in group)
        if rows and size + grown > limit:
            records.append(_record(member, rows))
            rows, size = [], frame
        rows.extend(group)
        size += grown
        i = j
    audiences = _audience_parts(batch, limit - frame - 8)
    if audiences and size + len(audiences[0]) + 1 <= limit:
        records.append(_record(member, rows, audiences.pop(0)))
    elif rows or not audiences:
        records.append(_record(member, rows))
    records.extend(_record(member, [], part) for part in audiences)
    return records


def _record(member: bytes, rows: list[bytes], audience: bytes = b"") -> bytes:
    return (b'{"member":' + member + b',"facts":[' + b",".join(rows) + b"]"
            + (b"," + audience if audience else b"") + b"}")


def _audience_parts(batch: FactBatch, limit: int) -> list[bytes]:
    """``"audience_add":{...},"audience_remove":{...}`` members (and the reach sets'
    ``reach_points``, ``reach_remove``, ``reach_gone``), split to fit."""
    parts: list[dict[str, Any]] = [{}]
    size = 0
    overhead = len(b'"audience_add":{},"audience_remove":{},"reach_points":{},'
                   b'"reach_remove":{},"reach_gone":[]')

    def room(cost: int) -> dict[str, Any]:
        nonlocal size
        if size and size + cost > limit - overhead:
            parts.append({})
            size = 0
        size += cost
        return parts[-1]

    for key, scores in batch.audience_add.items():
        for pid, score in scores.items():  # the entry, and its key again at worst
            cost = len(orjson.dumps(pid)) + len(orjson.dumps(score)) + len(key) + 8
            room(cost).setdefault("audience_add", {}).setdefault(key, {})[pid] = score
    for pid, point in batch.reach_points.items():
        body = point.to_json()
        room(len(orjson.dumps(pid)) + len(orjson.dumps(body)) + 2).setdefault(
            "reach_points", {})[pid] = body
    for kind, drops in (("audience_remove", batch.audience_remove),
                        ("reach_remove", batch.reach_remove)):
        for key, gone in drops.items():
            for pid in sorted(gone):
                cost = len(orjson.dumps(pid)) + len(key) + 8
                room(cost).setdefault(kind, {}).setdefault(key, []).append(pid)
    for pid in sorted(batch.reach_gone):
        room(len(orjson.dumps(pid)) + 1).setdefault("reach_gone", []).append(pid)
    return [orjson.dumps(p)[1:-1] for p in parts if p]


def decode(raw: bytes) -> FactBatch:
    """A facts record; raises ``ValueError`` (or ``KeyError``/``TypeError``) on one that is
    not (the consumer sets it aside)."""
    body = orjson.loads(raw)
    out = FactBatch(str(body["member"]),
                    audience_add={str(c): {str(p): float(s) for p, s in m.items()}
                                  for c, m in body.get("audience_add", {}).items()},
                    audience_remove={str(c): {str(p) for p in m}
                                     for c, m in body.get("audience_remove", {}).items()},
                    reach_points={str(p): reach.Point.from_json(v)
                                  for p, v in body.get("reach_points", {}).items()},
                    reach_remove={str(c): {str(p) for p in m}
                                  for c, m in body.get("reach_remove", {}).items()},
                    reach_gone={str(p) for p in body.get("reach_gone", [])})
    for row in body["facts"]:
        if len(row) not in (3, 4, 8, 9):
            raise ValueError(f"a fact has 3, 4, 8 or 9 members, not {len(row)}")
        source = str(row[-1]) if len(row) in (4, 9) else ""
        fact = Fact(int(row[0]), float(row[1]), float(row[2]), source=source)
        if len(row) >= 8:
            props = row[7]
            if not isinstance(props, dict):
                raise TypeError("a fact's properties are an object")
            fact = replace(fact, event=str(row[3]), channel=str(row[4]), region=str(row[5]),
                           segments=tuple(str(s) for s in row[6]), properties=props)
        out.facts.append(fact)
    return out
