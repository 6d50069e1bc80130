"""Which fields of the records on Kafka are personal, and under whose key they are
sealed (:mod:`rapport.shared.vault`): one place, so every writer seals what every
reader opens.

- Touchpoints (kept forever): every id, trait, property and context is sealed under
  the key of the identifier the person is first known by (:func:`identifiers.founder`);
  the record's Kafka key is that identifier's keyed fingerprint, so nothing on the
  topic names the person.
- Hand-overs on the re-keyed stream: the absorbed profile and its timeline, under the
  absorbed profile's key.
- Profile updates: identities, traits and consents, under the profile's key (metrics
  stay readable for scoring; the compacted topic also gets a tombstone on erasure).

Erasure destroys the keys of every id the person had (:func:`person_kids`).
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

import orjson

from . import identifiers
from .privacy import Fingerprints
from .vault import Sealer

TOUCHPOINT_PERSONAL = frozenset({"user_id", "anonymous_id", "previous_id", "group_id",
                                 "traits", "context", "properties"})
HANDOVER_PERSONAL = frozenset({"absorbed", "timeline"})
PROFILE_PERSONAL = frozenset({"identities", "traits", "trait_times", "consents"})


def touchpoint_kid(fp: Fingerprints, user_id: object, anonymous_id: object) -> str | None:
    found = identifiers.founder(user_id, anonymous_id)
    return None if found is None else fp.of(*found)


def profile_kid(fp: Fingerprints, profile_id: str) -> str:
    return fp.profile(profile_id)


def person_kids(fp: Fingerprints, profile_ids: Iterable[str],
                ids: Iterable[tuple[str, str]]) -> list[str]:
    """Every key a person's records may be sealed under: their profiles' and each of
    their user and anonymous ids'."""
    kids = {profile_kid(fp, p) for p in profile_ids}
    kids |= {fp.of(kind, value) for kind, value in ids if kind in ("user_id", "anonymous_id")}
    return sorted(kids)


class TouchpointSeals:
    """Seal touchpoints for Kafka (ingest) and open them again (the profile service)."""

    def __init__(self, sealer: Sealer, fingerprints: Fingerprints) -> None:
        self._sealer = sealer
        self._fp = fingerprints

    async def seal(self, bodies: list[dict[str, Any]]) -> list[tuple[bytes, bytes]]:
        """(Kafka key, value) of each touchpoint body (its JSON object), in one round trip.
        Every body must have a founding identifier (ingest refuses those without)."""
        kids = [touchpoint_kid(self._fp, b.get("user_id"), b.get("anonymous_id"))
                for b in bodies]
        if any(k is None for k in kids):
            raise ValueError("a touchpoint without an identifier that may identify anyone")
        sealed = await self._sealer.seal_many(
            [(k, b) for k, b in zip(kids, bodies, strict=True) if k is not None],
            TOUCHPOINT_PERSONAL)
        return [(k.encode(), orjson.dumps(s)) for k, s in zip(kids, sealed, strict=True)
                if k is not None]

    async def open(self, objs: list[dict[str, Any]]) -> list[dict[str, Any] | None]:
        """Each touchpoint object opened (unsealed ones pass), None where erased."""
        return await self._sealer.open_many(objs)
