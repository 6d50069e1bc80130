"""Signed-in people: a random session id in an HttpOnly, SameSite=Strict cookie maps to
the API key and its role, kept in this process's memory only. The key itself never
leaves the server again (never in a URL, a page or a log)."""

from __future__ import annotations

import secrets
import time
from dataclasses import dataclass

from rapport.shared.auth import Role

COOKIE = "rapport_session"


@dataclass
class Session:
    key: str
    role: Role
    expires: float


class Sessions:
    def __init__(self, ttl_s: float) -> None:
        self._ttl = ttl_s
        self._by_id: dict[str, Session] = {}

    def open(self, key: str, role: Role) -> str:
        self._sweep()
        sid = secrets.token_urlsafe(32)
        self._by_id[sid] = Session(key, role, time.monotonic() + self._ttl)
        return sid

    def get(self, sid: str | None) -> Session | None:
        if not sid:
            return None
        found = self._by_id.get(sid)
        if found is None or found.expires < time.monotonic():
            self._by_id.pop(sid, None)
            return None
        found.expires = time.monotonic() + self._ttl
        return found

    def close(self, sid: str | None) -> None:
        if sid:
            self._by_id.pop(sid, None)

    def _sweep(self) -> None:
        now = time.monotonic()
        for sid in [s for s, v in self._by_id.items() if v.expires < now]:
            del self._by_id[sid]
