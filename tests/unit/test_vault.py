"""The pure part of crypto-shredding: envelopes open only under their own key and kid,
anything else is an erasure (Shredded) or a malformed record (SealedRecordError)."""

from __future__ import annotations

import base64
import os
import pickle
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from rapport.shared.vault import (
    SealedRecordError,
    Shredded,
    envelope_kid,
    open_sealed,
    seal,
    seal_fields,
    sealed_kid,
    unseal_fields,
)

KID = "0123456789abcdef0123456789abcdef"
OTHER = "fedcba9876543210fedcba9876543210"
KEY = bytes(range(32))
PERSONAL = frozenset({"email", "phone", "traits", "name"})

# What orjson gives back equal: no NaN or infinities (written as null), 64-bit integers.
_json = st.recursive(
    st.none() | st.booleans() | st.integers(-(2**63), 2**63 - 1)
    | st.floats(allow_nan=False, allow_infinity=False) | st.text(),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(), inner, max_size=4),
    max_leaves=20)
_objects = st.dictionaries(st.text(), _json, max_size=8)


def _flip(b64: str, at: int) -> str:
    raw = bytearray(base64.b64decode(b64))
    raw[at % len(raw)] ^= 0x01
    return base64.b64encode(bytes(raw)).decode()


@given(_objects)
def test_seal_then_open_gives_the_fields_back(fields: dict[str, Any]) -> None:
    envelope = seal(KEY, KID, fields)
    assert envelope.keys() == {"kid", "n", "c"} and envelope["kid"] == KID
    assert len(base64.b64decode(envelope["n"])) == 12
    assert open_sealed(KEY, envelope) == fields


def test_each_seal_draws_a_fresh_nonce() -> None:
    a, b = seal(KEY, KID, {"email": "a@x.io"}), seal(KEY, KID, {"email": "a@x.io"})
    assert a["n"] != b["n"] and a["c"] != b["c"]


def test_nothing_personal_is_readable_in_the_envelope() -> None:
    envelope = seal(KEY, KID, {"email": "alice@example.com"})
    assert b"alice" not in base64.b64decode(envelope["c"])
    assert "alice" not in str(envelope)


def test_a_wrong_key_is_shredded() -> None:
    envelope = seal(KEY, KID, {"email": "a@x.io"})
    with pytest.raises(Shredded) as caught:
        open_sealed(os.urandom(32), envelope)
    assert caught.value.kid == KID and KID in str(caught.value)
    assert pickle.loads(pickle.dumps(caught.value)).kid == KID


def test_an_envelope_moved_to_another_kid_is_shredded() -> None:
    envelope = seal(KEY, KID, {"email": "a@x.io"})
    with pytest.raises(Shredded):
        open_sealed(KEY, {**envelope, "kid": OTHER})


@pytest.mark.parametrize("at", [0, 5, -1, -16])
def test_a_tampered_ciphertext_is_shredded(at: int) -> None:
    envelope = seal(KEY, KID, {"email": "a@x.io", "phone": "+33600000000"})
    with pytest.raises(Shredded):
        open_sealed(KEY, {**envelope, "c": _flip(envelope["c"], at)})


def test_a_tampered_nonce_is_shredded() -> None:
    envelope = seal(KEY, KID, {"email": "a@x.io"})
    with pytest.raises(Shredded):
        open_sealed(KEY, {**envelope, "n": _flip(envelope["n"], 3)})


_GOOD = seal(KEY, KID, {"email": "a@x.io"})


@pytest.mark.parametrize("envelope", [
    None, "sealed", [], {},
    {"kid": KID, "n": _GOOD["n"]},                              # a field missing
    {**_GOOD, "v": 2},                                          # an unknown format
    {**_GOOD, "kid": "not-a-fingerprint"},
    {**_GOOD, "kid": KID.upper()},
    {**_GOOD, "kid": 7},
    {**_GOOD, "n": "***"},                                      # not base64
    {**_GOOD, "n": 12},
    {**_GOOD, "n": base64.b64encode(b"short").decode()},        # not 12 bytes
    {**_GOOD, "c": base64.b64encode(b"tiny").decode()},         # shorter than a tag
    {**_GOOD, "c": _GOOD["c"] + "!"},
], ids=repr)
def test_a_malformed_envelope_is_an_error_not_an_erasure(envelope: Any) -> None:
    with pytest.raises(SealedRecordError):
        open_sealed(KEY, envelope)


def test_a_sealed_non_object_is_malformed() -> None:
    from cryptography.hazmat.primitives.ciphers.aead import AESGCM
    nonce = os.urandom(12)
    raw = AESGCM(KEY).encrypt(nonce, b"[1, 2]", KID.encode())
    envelope = {"kid": KID, "n": base64.b64encode(nonce).decode(),
                "c": base64.b64encode(raw).decode()}
    with pytest.raises(SealedRecordError):
        open_sealed(KEY, envelope)


@pytest.mark.parametrize("key", [b"", bytes(16), bytes(33), "k" * 32])
def test_only_a_32_byte_key_is_used(key: Any) -> None:
    with pytest.raises(ValueError):
        seal(key, KID, {})
    with pytest.raises(ValueError):
        open_sealed(key, _GOOD)


@pytest.mark.parametrize("kid", ["", "abc", KID + "0", KID.upper(), "rapport:*" + KID[9:]])
def test_seal_refuses_a_kid_that_is_not_a_fingerprint(kid: str) -> None:
    with pytest.raises(ValueError):
        seal(KEY, kid, {})


@given(_objects, st.frozensets(st.text(max_size=3), max_size=6))
def test_fields_split_and_merge_back(obj: dict[str, Any], personal: frozenset[str]) -> None:
    obj.pop("sealed", None)
    personal = personal - {"sealed"}
    sealed = seal_fields(obj, personal, KEY, KID)
    hidden = personal & obj.keys()
    assert not hidden & sealed.keys()
    assert {k: v for k, v in sealed.items() if k != "sealed"} == {
        k: v for k, v in obj.items() if k not in personal}
    assert ("sealed" in sealed) == bool(hidden)
    assert sealed_kid(sealed) == (KID if hidden else None)
    assert unseal_fields(sealed, KEY) == obj


def test_seal_fields_keeps_the_clear_fields_and_leaves_the_input_alone() -> None:
    obj = {"message_id": "m1", "timestamp": "2024-01-01T00:00:00Z",
           "email": "a@x.io", "traits": {"name": "Alice"}}
    before = dict(obj)
    sealed = seal_fields(obj, PERSONAL, KEY, KID)
    assert obj == before
    assert sealed.keys() == {"message_id", "timestamp", "sealed"}
    assert envelope_kid(sealed["sealed"]) == KID
    assert open_sealed(KEY, sealed["sealed"]) == {"email": "a@x.io",
                                                   "traits": {"name": "Alice"}}
    with pytest.raises(Shredded):
        unseal_fields(sealed, os.urandom(32))


def test_a_record_already_sealed_is_not_sealed_twice() -> None:
    sealed = seal_fields({"email": "a@x.io"}, PERSONAL, KEY, KID)
    with pytest.raises(ValueError):
        seal_fields(sealed, PERSONAL, KEY, KID)


def test_a_record_without_sealed_passes_through() -> None:
    old = {"message_id": "m1", "email": "a@x.io"}
    opened = unseal_fields(old, os.urandom(32))
    assert opened == old and opened is not old
    assert sealed_kid(old) is None


def test_a_field_both_sealed_and_clear_is_malformed() -> None:
    sealed = seal_fields({"email": "a@x.io"}, PERSONAL, KEY, KID)
    with pytest.raises(SealedRecordError):
        unseal_fields({**sealed, "email": "b@x.io"}, KEY)


def test_a_malformed_sealed_field_is_reported_by_sealed_kid() -> None:
    with pytest.raises(SealedRecordError):
        sealed_kid({"sealed": "plain text"})
