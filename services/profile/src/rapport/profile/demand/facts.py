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
from dataclasses import dataclass, field
from typing import Any

import orjson

from rapport.shared.events import Touchpoint
from rapport.shared.profiles import CustomerProfile

from . import audience
from .series import Contribution, Metric, SeriesKey, contribution, region_of

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


@dataclass(frozen=True)
class Fact:
    offset: int
    event_s: float
    received_s: float
    contribution: Contribution


@dataclass
class FactBatch:
    member: str
    facts: list[Fact] = field(default_factory=list)
    audience_add: dict[str, dict[str, float]] = field(default_factory=dict)
    audience_remove: dict[str, set[str]] = field(default_factory=dict)

    def __bool__(self) -> bool:
        return bool(self.facts or self.audience_add or self.audience_remove)

    def past(self, counted: int) -> FactBatch:
        """The facts from records past offset ``counted`` (audiences are idempotent)."""
        return FactBatch(self.member, [f for f in self.facts if f.offset > counted],
                         self.audience_add, self.audience_remove)


def of_batch(member: str, applied: Iterable[Applied],
             profiles: Mapping[str, CustomerProfile], gone: Mapping[str, Iterable[str]],
             half_life_days: float) -> FactBatch:
    """A batch's facts: ``profiles`` are its changed profiles (segments evaluated),
    ``gone`` the categories of the profiles it handed over."""
    out = FactBatch(member, audience_add=audience.additions(profiles, half_life_days),
                    audience_remove=audience.removals(gone))
    for a in applied:
        profile = profiles.get(a.profile_id)
        tp = a.touchpoint
        out.facts.append(Fact(a.offset, tp.timestamp.timestamp(), tp.received_at.timestamp(),
                              contribution(tp, region=region_of(tp, profile.traits if profile
                                                                else None),
                                           segments=profile.segments if profile else ())))
    return out


def _row(f: Fact) -> bytes:
    row: list[Any] = [f.offset, f.event_s, f.received_s]
    if f.contribution:
        row.append({k.field: v for k, v in f.contribution.series.items()})
        row.append([[m.value, item, n] for (m, item), n in f.contribution.products.items()])
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
    """``"audience_add":{...},"audience_remove":{...}`` members, split to fit."""
    parts: list[tuple[dict[str, dict[str, float]], dict[str, list[str]]]] = [({}, {})]
    size = 0
    overhead = len(b'"audience_add":{},"audience_remove":{}')

    def room(cost: int) -> tuple[dict[str, dict[str, float]], dict[str, list[str]]]:
        nonlocal size
        if size and size + cost > limit - overhead:
            parts.append(({}, {}))
            size = 0
        size += cost
        return parts[-1]

    for category, scores in batch.audience_add.items():
        for pid, score in scores.items():  # the entry, and its category's key again at worst
            cost = len(orjson.dumps(pid)) + len(orjson.dumps(score)) + len(category) + 8
            room(cost)[0].setdefault(category, {})[pid] = score
    for category, gone in batch.audience_remove.items():
        for pid in sorted(gone):
            cost = len(orjson.dumps(pid)) + len(category) + 8
            room(cost)[1].setdefault(category, []).append(pid)
    return [orjson.dumps({"audience_add": a, "audience_remove": r})[1:-1]
            for a, r in parts if a or r]


def decode(raw: bytes) -> FactBatch:
    """A facts record; raises ``ValueError`` (or ``KeyError``/``TypeError``) on one that is
    not (the consumer sets it aside)."""
    body = orjson.loads(raw)
    out = FactBatch(str(body["member"]),
                    audience_add={str(c): {str(p): float(s) for p, s in m.items()}
                                  for c, m in body.get("audience_add", {}).items()},
                    audience_remove={str(c): {str(p) for p in m}
                                     for c, m in body.get("audience_remove", {}).items()})
    for row in body["facts"]:
        part = Contribution()
        if len(row) > 3:
            part.series = {SeriesKey.parse(k): int(v) for k, v in row[3].items()}
            part.products = {(Metric(m), str(item)): int(n) for m, item, n in row[4]}
        out.facts.append(Fact(int(row[0]), float(row[1]), float(row[2]), part))
    return out
