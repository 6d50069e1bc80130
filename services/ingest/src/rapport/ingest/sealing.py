"""What ingest writes to Kafka, sealed: each touchpoint's ids, traits, properties and
context under its person's key (:mod:`rapport.shared.sealing`), and each dead letter's
message under the key of the person it names. A rejected message that names nobody
who could ever be erased keeps only its non-personal fields."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import orjson

from rapport.shared import sealing
from rapport.shared.privacy import Fingerprints
from rapport.shared.vault import Sealer

from .shape import letter_bytes

LETTER_PERSONAL = frozenset({"message", "messageNote"})
_CLEAR_FIELDS = ("type", "event", "name", "category", "messageId", "timestamp", "sentAt",
                 "originalTimestamp")


def redacted(message: Any) -> Any:
    """A rejected message with nothing personal: its type, names and times."""
    if not isinstance(message, dict):
        return {"withheld": "not an object"}
    kept = {k: message[k] for k in _CLEAR_FIELDS
            if isinstance(message.get(k), str | int | float | bool)}
    return {**kept, "withheld": "personal fields (no identifier to seal them under)"}


def letter_kid(fp: Fingerprints, message: Any) -> str | None:
    if not isinstance(message, dict):
        return None
    return sealing.touchpoint_kid(fp, message.get("userId"), message.get("anonymousId"))


class IngestSeals:
    def __init__(self, sealer: Sealer, fingerprints: Fingerprints) -> None:
        self._sealer = sealer
        self._fp = fingerprints
        self._touchpoints = sealing.TouchpointSeals(sealer, fingerprints)

    async def touchpoints(self, bodies: Sequence[dict[str, Any]]) -> list[tuple[bytes, bytes]]:
        """(Kafka key, value) of each touchpoint, given as its JSON object
        (:func:`~rapport.ingest.domain.touchpoint_body`): keyed by its person's fingerprint."""
        return await self._touchpoints.seal(list(bodies))

    async def letters(self, fields: Sequence[dict[str, Any]],
                      messages: Sequence[Any]) -> list[bytes]:
        """Each dead letter (``fields`` plus its message), the message sealed."""
        bodies = [orjson.loads(letter_bytes(f, m)) for f, m in zip(fields, messages,
                                                                   strict=True)]
        kids = [letter_kid(self._fp, m) for m in messages]
        named = [(k, b) for k, b in zip(kids, bodies, strict=True) if k is not None]
        sealed = iter(await self._sealer.seal_many(named, LETTER_PERSONAL))
        out = []
        for kid, body, message in zip(kids, bodies, messages, strict=True):
            if kid is not None:
                out.append(orjson.dumps(next(sealed)))
            else:
                out.append(orjson.dumps({**body, "message": redacted(message),
                                         "messageNote": None}))
        return out

