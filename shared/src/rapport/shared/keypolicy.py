"""Which configured keys a service refuses to start with.

A deployment that copies an example key, forgets to replace a placeholder or
carries the well-known development keys into production is open to anyone who
has read the README. Settings therefore check every API key, ingest write key
and the privacy secret at start-up (unless ``RAPPORT_DEV_KEYS=1``) and refuse
to start, naming the setting and never the key itself.
"""

from __future__ import annotations

import re
from collections.abc import Iterable

MIN_LENGTH = 16
MIN_DISTINCT = 5
# Compared against the key lower-cased with separators removed ("Change_Me" too); words
# of five letters or more, so a random key matches one by chance about once in a million.
PLACEHOLDER_WORDS = ("changeme", "changeit", "example", "placeholder", "secret", "password",
                     "replace", "sample", "dummy", "default", "insecure")
_SEPARATORS = re.compile(r"[\s\-_.:/]+")
_DEV = re.compile(r"^dev[\-_.]", re.IGNORECASE)


class InsecureKey(ValueError):
    """A configured key is a placeholder, a development key or too weak."""


def weakness(key: str, *, header: bool = True) -> str | None:
    """Why ``key`` must not be used, or None. The reason never quotes the key.

    ``header``: the key travels in an HTTP header, where whitespace cannot match.
    """
    if _DEV.match(key):
        return "is a development key (dev-*)"
    folded = _SEPARATORS.sub("", key.lower())
    for word in PLACEHOLDER_WORDS:
        if word in folded:
            return f"looks like a placeholder (contains '{word}')"
    if len(key) < MIN_LENGTH:
        return f"is too short (fewer than {MIN_LENGTH} characters)"
    if len(set(key)) < MIN_DISTINCT:
        return f"is too repetitive (fewer than {MIN_DISTINCT} distinct characters)"
    if header and any(ch.isspace() or not ch.isprintable() for ch in key):
        return "contains whitespace or control characters (it could never match)"
    return None


def check(setting: str, keys: Iterable[tuple[str, str]], *, header: bool = True) -> None:
    """Raise :class:`InsecureKey` for the first weak key; ``keys`` are (what, key) pairs,
    ``what`` naming the key without revealing it (its role, its source)."""
    for what, key in keys:
        reason = weakness(key, header=header)
        if reason:
            raise InsecureKey(f"{setting}: {what} {reason}. Use a random value (e.g. "
                              f"`openssl rand -hex 32`); RAPPORT_DEV_KEYS=1 allows any key, "
                              f"for local development only")
