"""Deduplication by ``messageId`` per source: which Redis buckets a message's
fingerprint lives in. Pure; the Redis side is in ``store.py``.

A message is remembered as an 8-byte fingerprint in the bucket of the UTC day
it was first accepted; a new message is checked against today's and
yesterday's buckets, so a resend is recognised for at least 24 hours (and at
most 48). Buckets are sharded into many small hashes, which Redis stores
compactly (about 15 bytes per message).
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable
from datetime import datetime
from typing import NamedTuple

from rapport.shared import keys

DAY_S = 86_400
FINGERPRINT_BYTES = 8


class Slot(NamedTuple):
    fingerprint: bytes
    current: str
    previous: str


def fingerprint(source: str, message_id: str) -> bytes:
    return hashlib.blake2b(f"{source}\x1f{message_id}".encode(),
                           digest_size=FINGERPRINT_BYTES).digest()


def slot(source: str, message_id: str, now: datetime, shards: int) -> Slot:
    return slots(source, [message_id], now, shards)[message_id]


def slots(source: str, message_ids: Iterable[str], now: datetime,
          shards: int) -> dict[str, Slot]:
    """The slot of each message id of one request."""
    day = int(now.timestamp()) // DAY_S
    out = {}
    for mid in message_ids:
        fp = fingerprint(source, mid)
        shard = int.from_bytes(fp[:4], "big") % shards
        out[mid] = Slot(fp, keys.ingest_seen(source, day, shard),
                        keys.ingest_seen(source, day - 1, shard))
    return out
