"""What an agent typed, turned into the profile API's look-ups (pure)."""

from __future__ import annotations

import re

_PHONE = re.compile(r"^\+?[\d\s().-]{6,}$")


def lookups(query: str) -> list[tuple[str, str]]:
    """``[(kind, value), ...]`` to try, most likely first: ``email`` and ``phone`` by
    their shape; anything else may be a customer id or a loyalty id (both are tried, so
    a value that is one person's customer id and another's loyalty id lists both)."""
    q = query.strip()
    if not q:
        return []
    if "@" in q:
        return [("email", q)]
    if _PHONE.match(q) and sum(c.isdigit() for c in q) >= 6:
        return [("phone", q), ("customer_id", q), ("loyalty_id", q)]
    return [("customer_id", q), ("loyalty_id", q), ("anonymous_id", q)]
