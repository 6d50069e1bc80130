"""Identifiers as the whole system reads them: cleaned the same way at ingest, in
identity resolution and in lookups, validated by kind, and never a placeholder.

Pure functions. ``clean`` is for ids (user, anonymous, previous, group ids): Unicode
NFKC, trimmed, no control, format (zero-width) or bidirectional-override characters.
``normalize`` is per identifier kind and answers None for a value that must never
link anyone (an email that is not one, a phone with too few digits, "n/a")."""

from __future__ import annotations

import re
import unicodedata

MAX_ID_LENGTH = 256
MIN_PHONE_DIGITS = 7
MAX_PHONE_DIGITS = 15  # E.164

PLACEHOLDERS = frozenset({
    "", "-", "--", ".", "0", "?", "n/a", "na", "n.a.", "none", "null", "nil", "undefined",
    "unknown", "anonymous", "anon", "guest", "test", "x", "xx", "xxx", "empty", "blank",
    "nan", "false", "true", "[object object]", "not provided", "not available",
    "no email", "noemail", "no phone", "nophone", "default", "user", "customer",
    "0000000000", "1234567890", "test@test.com", "test@example.com", "email@example.com",
    "noreply@example.com", "no-reply@example.com", "none@none.com", "a@a.com",
})
"""Values callers send when they have nothing: they never identify or link a person."""

_EMAIL = re.compile(r"^[a-z0-9!#$%&'*+/=?^_`{|}~.-]{1,64}@[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?"
                    r"(?:\.[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?)+$")


class InvalidIdentifier(ValueError):
    """An identifier that cannot be accepted, with the reason."""


def _refused_character(value: str) -> str | None:
    for ch in value:
        cat = unicodedata.category(ch)
        if cat in ("Cc", "Cf", "Cs", "Co", "Cn") or unicodedata.bidirectional(ch) in (
                "LRE", "RLE", "LRO", "RLO", "PDF", "LRI", "RLI", "FSI", "PDI"):
            return f"U+{ord(ch):04X}"
    return None


def clean(value: str, *, max_length: int = MAX_ID_LENGTH) -> str:
    """An id as it is kept: NFKC, trimmed; raises :class:`InvalidIdentifier` when empty,
    too long, or holding control, format or bidi characters (:func:`clean_unicode`).
    Printable ASCII, nearly every id, takes a shortcut with the same result: NFKC leaves
    it unchanged and it holds no such character (the full rule costs ~35 us an id)."""
    if value.isascii() and value.isprintable():
        text = value.strip()
        if text and len(text) <= max_length:
            return text
    return clean_unicode(value, max_length=max_length)


def clean_unicode(value: str, *, max_length: int = MAX_ID_LENGTH) -> str:
    """:func:`clean` by the full rule, for any text."""
    text = unicodedata.normalize("NFKC", value).strip()
    if not text:
        raise InvalidIdentifier("must not be empty")
    if len(text) > max_length:
        raise InvalidIdentifier(f"longer than {max_length} characters")
    bad = _refused_character(text)
    if bad is not None:
        raise InvalidIdentifier(f"contains a control, format or bidi character ({bad})")
    return text


def is_placeholder(value: str) -> bool:
    return value.strip().casefold() in PLACEHOLDERS


def normalize(kind: str, value: object) -> str | None:
    """The identifier of ``kind`` as resolution keys it, or None when it must not link."""
    if not isinstance(value, str):
        return None
    try:
        text = clean(value)
    except InvalidIdentifier:
        return None
    if is_placeholder(text):
        return None
    if kind == "email":
        email = text.casefold()
        return email if len(email) <= 254 and _EMAIL.match(email) else None
    if kind == "phone":
        return _phone(text)
    return text


_PHONE_PUNCTUATION = frozenset("+-.() /")
_SEQUENCES = ("0123456789", "1234567890", "9876543210")


def _phone(text: str) -> str | None:
    """``+`` and the number's decimal digits (any script's digits read as ASCII), or None
    for what is no phone: too few or many digits, words, one digit repeated, a counting
    sequence, a placeholder however it is formatted."""
    if any(not (ch.isdecimal() or ch in _PHONE_PUNCTUATION) for ch in text):
        return None  # "call me", "ext", superscripts and the like are not phone numbers
    digits = "".join(str(unicodedata.decimal(ch)) for ch in text if ch.isdecimal())
    if not (MIN_PHONE_DIGITS <= len(digits) <= MAX_PHONE_DIGITS) or len(set(digits)) == 1:
        return None
    if digits in PLACEHOLDERS or any(digits in seq for seq in _SEQUENCES):
        return None
    return "+" + digits


def founder(user_id: object, anonymous_id: object) -> tuple[str, str] | None:
    """The identifier a touchpoint's person is first known by: its user id, else its
    anonymous id, each only if it may identify anyone. Ingest seals a touchpoint under
    this identifier's key; the profile service founds a new profile by it."""
    for kind, value in (("user_id", user_id), ("anonymous_id", anonymous_id)):
        norm = normalize(kind, value)
        if norm is not None:
            return kind, norm
    return None
