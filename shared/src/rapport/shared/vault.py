"""Crypto-shredding of personal data on Kafka.

Kafka keeps records for as long as it likes (compaction, replays, mirrors), so personal
fields cannot be erased there. Instead they are sealed (AES-256-GCM) under a data key
per person that lives outside Kafka, in Redis (:func:`rapport.shared.keys.vault_key`).
Erasure deletes the key: every record sealed under it, wherever a copy is, becomes
unreadable forever. A key created again later for the same person is a new random key,
so it opens nothing written before.

The pure part (:func:`seal`, :func:`open_sealed`, :func:`seal_fields`,
:func:`unseal_fields`) does no I/O; :class:`KeyVault` is the Redis adapter and
:class:`Sealer` does a batch with one Redis round trip.
"""

from __future__ import annotations

import base64
import binascii
import os
import re
from collections.abc import Iterable
from typing import Any

import orjson
from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from redis.asyncio import Redis

from rapport.shared import keys

KEY_BYTES = 32
"""AES-256."""
NONCE_BYTES = 12
"""GCM's 96-bit nonce, random: a key only ever seals one person's records, far fewer
than the ~2**32 messages after which random nonces risk colliding."""
SEALED = "sealed"
"""The field of a record that holds its envelope."""

_TAG_BYTES = 16
_KID = re.compile(r"[0-9a-f]{32}")
_ENVELOPE_FIELDS = frozenset({"kid", "n", "c"})


class Shredded(Exception):
    """The envelope does not open under the key given: the person was erased (the key is
    gone, or was destroyed and created again) or the record was altered."""

    def __init__(self, kid: str) -> None:
        super().__init__(kid)
        self.kid = kid

    def __str__(self) -> str:
        return f"sealed record of {self.kid} cannot be opened (erased or altered)"


class SealedRecordError(ValueError):
    """An envelope that is not one :func:`seal` writes: a bug or a foreign writer, never
    taken for an erasure (which would silently drop the record)."""


def _check_kid(kid: object) -> str:
    if not isinstance(kid, str) or not _KID.fullmatch(kid):
        raise ValueError(f"a vault kid is 32 lowercase hex characters, not {kid!r}")
    return kid


def _aead(key: bytes) -> AESGCM:
    if not isinstance(key, bytes) or len(key) != KEY_BYTES:
        raise ValueError(f"a vault key is {KEY_BYTES} bytes")
    return AESGCM(key)


def seal(key: bytes, kid: str, fields: dict[str, Any]) -> dict[str, str]:
    """Encrypt ``fields`` (as orjson writes them) under ``key``.

    The kid is the associated data: an envelope copied under another person's kid
    does not open.
    """
    return _seal_with(_aead(key), _check_kid(kid), fields)


def _seal_with(aead: AESGCM, kid: str, fields: dict[str, Any]) -> dict[str, str]:
    nonce = os.urandom(NONCE_BYTES)
    ciphertext = aead.encrypt(nonce, orjson.dumps(fields), kid.encode())
    return {"kid": kid, "n": base64.b64encode(nonce).decode(),
            "c": base64.b64encode(ciphertext).decode()}


def _b64(value: object, what: str) -> bytes:
    if not isinstance(value, str):
        raise SealedRecordError(f"envelope {what} is not a string")
    try:
        return base64.b64decode(value, validate=True)
    except (binascii.Error, ValueError) as exc:
        raise SealedRecordError(f"envelope {what} is not base64") from exc


def envelope_kid(envelope: object) -> str:
    """The kid of a well-formed envelope (which key to fetch); :class:`SealedRecordError`
    otherwise. Exactly the fields :func:`seal` writes: an unknown newer format fails loudly
    rather than as a tag mismatch that would read as an erasure."""
    if not isinstance(envelope, dict) or envelope.keys() != _ENVELOPE_FIELDS:
        raise SealedRecordError("not a sealed envelope")
    try:
        return _check_kid(envelope["kid"])
    except ValueError as exc:
        raise SealedRecordError(str(exc)) from exc


def open_sealed(key: bytes, envelope: dict[str, Any]) -> dict[str, Any]:
    """The fields :func:`seal` encrypted; :class:`Shredded` if they do not verify."""
    kid = envelope_kid(envelope)
    nonce, ciphertext = _b64(envelope["n"], "nonce"), _b64(envelope["c"], "ciphertext")
    if len(nonce) != NONCE_BYTES or len(ciphertext) < _TAG_BYTES:
        raise SealedRecordError("envelope nonce or ciphertext has the wrong length")
    aead = _aead(key)
    try:
        plain = aead.decrypt(nonce, ciphertext, kid.encode())
    except InvalidTag:
        raise Shredded(kid) from None
    try:
        fields = orjson.loads(plain)
    except orjson.JSONDecodeError as exc:
        raise SealedRecordError("sealed plaintext is not JSON") from exc
    if not isinstance(fields, dict):
        raise SealedRecordError("sealed plaintext is not a JSON object")
    return fields


def _split(obj: dict[str, Any], personal: frozenset[str]) -> tuple[dict, dict]:
    if SEALED in obj:
        raise ValueError(f"record already has a {SEALED!r} field: sealed twice?")
    clear = {k: v for k, v in obj.items() if k not in personal}
    secret = {k: v for k, v in obj.items() if k in personal}
    return clear, secret


def seal_fields(obj: dict[str, Any], personal: frozenset[str], key: bytes,
                kid: str) -> dict[str, Any]:
    """A copy of ``obj`` with its top-level ``personal`` fields moved into one envelope
    under ``"sealed"``; the rest stays in clear (keys, times, what routing needs). With no
    personal field present there is nothing to seal and no ``"sealed"`` field."""
    clear, secret = _split(obj, personal)
    if secret:
        clear[SEALED] = seal(key, kid, secret)
    return clear


def sealed_kid(obj: dict[str, Any]) -> str | None:
    """Whose key opens ``obj`` (None: nothing sealed in it)."""
    return envelope_kid(obj[SEALED]) if SEALED in obj else None


def unseal_fields(obj: dict[str, Any], key: bytes) -> dict[str, Any]:
    """The inverse of :func:`seal_fields` (a copy). A record without ``"sealed"``, such as
    one written before sealing existed, comes back as it is."""
    if SEALED not in obj:
        return dict(obj)
    secret = open_sealed(key, obj[SEALED])
    clear = {k: v for k, v in obj.items() if k != SEALED}
    if not clear.keys().isdisjoint(secret):
        # Either copy could be the stale one: refuse to guess.
        raise SealedRecordError("a field is both sealed and in clear")
    clear.update(secret)
    return clear


# Per kid, atomically: keep the key there if any, else store the fresh candidate; answer
# the winner. One script for the batch, so racing writers all agree on one key. The
# candidates come in one argument, KEY_BYTES each (one argument per batch, not per kid).
_KEYS_FOR = """
local out = {}
local size = tonumber(ARGV[2])
for i, key in ipairs(KEYS) do
  redis.call('SET', key, string.sub(ARGV[1], size * (i - 1) + 1, size * i), 'NX')
  out[i] = redis.call('GET', key)
end
return out
"""


class KeyVault:
    """Per-person data keys in Redis (a client returning bytes, as
    :func:`rapport.shared.redis_store.connect` gives).

    Nothing is cached in process: a destroyed key must stop opening records at once,
    in every reader.
    """

    def __init__(self, redis: Redis) -> None:
        self._redis = redis
        self._create = redis.register_script(_KEYS_FOR)

    async def keys_for(self, kids: Iterable[str], *, create: bool) -> dict[str, bytes]:
        """kid -> key, in one round trip. ``create`` (writers only) makes the missing keys;
        readers pass False and get only those that exist, so a read never brings an erased
        person's key back."""
        wanted = list(dict.fromkeys(_check_kid(kid) for kid in kids))
        if not wanted:
            return {}
        names = [keys.vault_key(kid) for kid in wanted]
        if create:
            got = await self._create(keys=names,
                                     args=[os.urandom(KEY_BYTES * len(wanted)), KEY_BYTES])
        else:
            got = await self._redis.mget(names)
        found = {}
        for kid, key in zip(wanted, got, strict=True):
            if key is None:
                continue
            if not isinstance(key, bytes) or len(key) != KEY_BYTES:
                raise RuntimeError(f"vault key of {kid} is not {KEY_BYTES} bytes: corrupt?")
            found[kid] = key
        return found

    async def destroy(self, kids: Iterable[str]) -> int:
        """Erase: delete the keys, so what was sealed under them never opens again.
        Returns how many existed."""
        names = list(dict.fromkeys(keys.vault_key(_check_kid(kid)) for kid in kids))
        return int(await self._redis.delete(*names)) if names else 0


class Sealer:
    """:func:`seal_fields` and :func:`unseal_fields` for a batch, fetching all of its keys
    in one round trip."""

    def __init__(self, vault: KeyVault) -> None:
        self._vault = vault

    async def seal_many(self, items: list[tuple[str, dict[str, Any]]],
                        personal: frozenset[str]) -> list[dict[str, Any]]:
        """Each (kid, record) sealed under its person's key, created if need be. Records
        with no personal field create no key."""
        splits = [(kid, *_split(obj, personal)) for kid, obj in items]
        found = await self._vault.keys_for(
            (kid for kid, _, secret in splits if secret), create=True)
        aeads = {kid: _aead(key) for kid, key in found.items()}  # kids checked by keys_for
        out = []
        for kid, clear, secret in splits:
            if secret:
                clear[SEALED] = _seal_with(aeads[kid], kid, secret)
            out.append(clear)
        return out

    async def open_many(self, objs: list[dict[str, Any]]) -> list[dict[str, Any] | None]:
        """Each record opened, or None where its person was erased. A malformed envelope
        raises :class:`SealedRecordError` (before any Redis call): it is not an erasure."""
        kids = [sealed_kid(obj) for obj in objs]
        found = await self._vault.keys_for((k for k in kids if k is not None), create=False)
        out: list[dict[str, Any] | None] = []
        for kid, obj in zip(kids, objs, strict=True):
            if kid is None:
                out.append(dict(obj))
            elif kid not in found:
                out.append(None)
            else:
                try:
                    out.append(unseal_fields(obj, found[kid]))
                except Shredded:
                    out.append(None)
        return out
