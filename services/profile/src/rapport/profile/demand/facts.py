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


def encode(batch: FactBatch) -> bytes:
    facts = []
    for f in batch.facts:
        row: list[Any] = [f.offset, f.event_s, f.received_s]
        if f.contribution:
            row.append({k.field: v for k, v in f.contribution.series.items()})
            row.append([[m.value, item, n] for (m, item), n in f.contribution.products.items()])
        facts.append(row)
    return orjson.dumps({"member": batch.member, "facts": facts,
                         "audience_add": batch.audience_add,
                         "audience_remove": {c: sorted(p) for c, p in
                                             batch.audience_remove.items()}})


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
