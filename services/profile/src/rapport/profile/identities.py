"""Which identifiers a touchpoint carries, and which profile id a new person gets.

Pure. Every identifier is normalised by its kind with the shared rules
(:mod:`rapport.shared.identifiers`); a value that must not link anyone (a placeholder,
an email that is not one, a phone with too few digits) is simply not an identifier.

Profile ids cannot collide across identifier kinds: a person first seen by a user id
gets that id (so a logged-in customer is known by it), unless it starts with the
reserved ``~``; anyone else gets an id in a namespace no user id can enter
(``~a:<anonymous id>``, ``~u:<user id>``). An anonymous id equal to somebody's user id
therefore founds a profile of its own instead of joining theirs.
"""

from __future__ import annotations

from rapport.shared import identifiers
from rapport.shared.events import Touchpoint
from rapport.shared.profiles import Identity

IDENTIFYING_TRAITS = ("email", "phone", "loyalty_id")
RESERVED = "~"
MAX_IDENTITIES = 64
"""Identifiers kept per profile (and linked to it in Redis); later ones still fold."""


def profile_id_for(kind: str, value: str) -> str:
    """The id of the profile a founding identifier (a user or anonymous id, the only
    kinds that found profiles) gives: injective across those two kinds."""
    if kind == "user_id":
        return value if not value.startswith(RESERVED) else f"{RESERVED}u:{value}"
    return f"{RESERVED}a:{value}"


def _id(kind: str, value: object) -> Identity | None:
    norm = identifiers.normalize(kind, value)
    # Built unvalidated: both fields are str by now, and this runs for every event.
    return None if norm is None else Identity.model_construct(type=kind, value=norm)


PREVIOUS = "previous_id"
"""An alias' old id: resolution reads it as the user id of that value when one is known,
else as the anonymous id, never as both (which could fuse a user with an unrelated
visitor whose device id happens to equal their user id)."""


def _previous(value: object) -> Identity | None:
    norm = identifiers.normalize("user_id", value)
    return None if norm is None else Identity.model_construct(type=PREVIOUS, value=norm)


def founder(tp: Touchpoint) -> Identity | None:
    """The identifier a new person's profile is founded by: the user id, else the
    anonymous id (None when neither may identify anyone)."""
    found = identifiers.founder(tp.user_id, tp.anonymous_id)
    return None if found is None else Identity(type=found[0], value=found[1])


def identities_of(tp: Touchpoint) -> list[Identity]:
    """The touchpoint's linkable identifiers, founder first, without repeats."""
    found: list[Identity | None] = [_id("user_id", tp.user_id),
                                    _id("anonymous_id", tp.anonymous_id)]
    if tp.previous_id:  # alias: resolution decides which kind the old id was
        found.append(_previous(tp.previous_id))
    found += [_id(trait, tp.traits.get(trait)) for trait in IDENTIFYING_TRAITS]
    out: list[Identity] = []
    for ident in found:
        if ident is not None and ident not in out:
            out.append(ident)
    return out


def lookup(kind: str, value: str) -> str | None:
    """A lookup value (API query) normalised as resolution keys it."""
    return identifiers.normalize(kind, value)
