"""How big one person's state may grow, and the check that every record the profile
service writes stays under Kafka's limit.

Caps per profile (documented in the README, tested at the caps):

| what | cap | past it |
|---|---|---|
| identifiers | 64 (``identities.MAX_IDENTITIES``) | new ones neither kept nor linked |
| traits | 100 names of at most 64 characters | new names ignored (known ones update) |
| one trait value | 1 KiB of JSON | that value ignored |
| all traits | 16 KiB of JSON | new names ignored |
| category affinities | 64, names cut to 100 characters | the weakest is dropped |
| merge history (``merged_from``) | 200 ids | ids past the first 200 (sorted) forgotten |
| timeline | 100 entries (``RAPPORT_TIMELINE_LENGTH``), 2 KiB each | oldest dropped |
| amounts and counts | 1e12 per sum, 1e9 per line | clamped |

Ingest refuses absurd amounts already; the clamps keep a profile storable whatever
reaches the stream.
"""

from __future__ import annotations

import math
from typing import Any

import orjson

from rapport.shared.profiles import CustomerProfile

MAX_TRAITS = 100
MAX_TRAIT_NAME = 64
MAX_TRAIT_BYTES = 1024
MAX_TRAITS_BYTES = 16 * 1024
MAX_AFFINITIES = 64
MAX_CATEGORY = 100
"""Characters of a category name kept (affinities, as demand's series)."""
MAX_MERGED_FROM = 200
MAX_TIMELINE_ENTRY_BYTES = 2048
MAX_SUM = 1e12
MAX_LINE = 1e9
MAX_COUNT = 10**12
RECORD_LIMIT = 900 * 1024
"""Largest profile-updates or re-keyed record written (Kafka's default limit is 1 MiB)."""


class TooLarge(ValueError):
    """A record the service would write is over :data:`RECORD_LIMIT`."""


def clamp(value: float, bound: float = MAX_SUM) -> float:
    """A finite amount within ``[-bound, bound]`` (NaN counts as 0)."""
    if not math.isfinite(value):
        return 0.0 if math.isnan(value) else math.copysign(bound, value)
    return max(-bound, min(bound, value))


def count(value: int) -> int:
    return max(0, min(MAX_COUNT, value))


def json_size(value: object) -> int | None:
    """Bytes of ``value`` as JSON, or None when it is not encodable (e.g. a 70-bit int)."""
    try:
        return len(orjson.dumps(value))
    except (TypeError, orjson.JSONEncodeError):
        return None


def trait_fits(traits: dict[str, object], name: str, value: object) -> bool:
    """Whether a trait may be set: known names always update within the value cap."""
    size = json_size(value)
    if size is None or size > MAX_TRAIT_BYTES:
        return False
    if name in traits:
        return True
    if len(traits) >= MAX_TRAITS or len(name) > MAX_TRAIT_NAME:
        return False
    total = json_size(traits) or 0
    return total + size + len(name) + 4 <= MAX_TRAITS_BYTES


def newest_entries(entries: list[tuple[float, str]], limit: int) -> list[tuple[float, str]]:
    """The ``limit`` newest timeline entries (what a hand-over carries)."""
    return sorted(entries, key=lambda e: e[0])[-limit:] if len(entries) > limit else entries


def encoded(profile: CustomerProfile) -> tuple[bytes, bytes]:
    """(stored form, published form) of a profile; raises when either cannot be encoded
    or the published record would be over :data:`RECORD_LIMIT`."""
    stored, published, _ = encoded_with_body(profile)
    return stored, published


def encoded_with_body(profile: CustomerProfile) -> tuple[bytes, bytes, dict[str, Any]]:
    """:func:`encoded` and the published form as a dict (what is sealed before it is
    sent), from one dump: the fold does this for every profile it changes."""
    body = profile.model_dump(mode="json")
    published = orjson.dumps(body)
    if len(published) > RECORD_LIMIT:
        raise TooLarge(f"profile record of {len(published)} bytes")
    return profile.to_stored(), published, body
