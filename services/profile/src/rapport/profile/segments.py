"""Segments: declarative definitions (conditions on profile fields, no ``eval``),
loaded from a file and evaluated on every profile update. Pure."""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum
from pathlib import Path

from pydantic import BaseModel, ConfigDict, Field, TypeAdapter

from rapport.shared.conditions import Condition
from rapport.shared.profiles import CustomerProfile

from .domain import describe

DEFAULT_FILE = Path(__file__).with_name("segments.json")


class Match(StrEnum):
    ALL = "all"
    ANY = "any"


class Segment(BaseModel):
    model_config = ConfigDict(extra="forbid")

    name: str = Field(pattern=r"^[a-z0-9][a-z0-9_-]{0,63}$")
    description: str = ""
    match: Match = Match.ALL
    conditions: list[Condition] = Field(min_length=1)

    def contains(self, facts: dict[str, object]) -> bool:
        results = (c.holds(facts) for c in self.conditions)
        return all(results) if self.match is Match.ALL else any(results)


_segments = TypeAdapter(list[Segment])


def load(path: Path | None) -> list[Segment]:
    segments = _segments.validate_json((path or DEFAULT_FILE).read_bytes())
    names = [s.name for s in segments]
    if len(set(names)) != len(names):
        raise ValueError("segment names must be unique")
    return segments


def memberships(profile: CustomerProfile, now: datetime, segments: list[Segment]) -> list[str]:
    facts = {"profile": describe(profile, now)}
    return sorted(s.name for s in segments if s.contains(facts))
