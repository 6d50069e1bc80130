"""API keys with roles, as the HTTP contract defines them.

``channel`` may ask for decisions and report outcomes; ``agent`` may do that
and read the customer 360; ``ops`` reads demand, dashboards and metrics;
``admin`` may do everything.
"""

from __future__ import annotations

import hmac
from collections.abc import Callable, Mapping
from enum import StrEnum
from pathlib import Path
from typing import Annotated

import orjson
from fastapi import Depends, HTTPException, Request
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer


class Role(StrEnum):
    CHANNEL = "channel"
    AGENT = "agent"
    OPS = "ops"
    ADMIN = "admin"


# Which roles satisfy a requirement for a given role.
_GRANTS: dict[Role, frozenset[Role]] = {
    Role.CHANNEL: frozenset({Role.CHANNEL, Role.AGENT, Role.ADMIN}),
    Role.AGENT: frozenset({Role.AGENT, Role.ADMIN}),
    Role.OPS: frozenset({Role.OPS, Role.ADMIN}),
    Role.ADMIN: frozenset({Role.ADMIN}),
}

DEV_API_KEYS: dict[str, Role] = {
    "dev-channel": Role.CHANNEL,
    "dev-agent": Role.AGENT,
    "dev-ops": Role.OPS,
    "dev-admin": Role.ADMIN,
}


def allows(granted: Role, required: Role) -> bool:
    return granted in _GRANTS[required]


def roles_of(setting: str, keys: Mapping[str, object]) -> dict[str, Role]:
    """``{key: role}`` with each role checked; errors name the setting, never a key."""
    out: dict[str, Role] = {}
    for key, role in keys.items():
        if not isinstance(key, str) or not isinstance(role, str) or role not in _GRANTS:
            # Not quoting the role either: swapped {role: key} entries would show the key.
            raise ValueError(f"{setting}: every value must be a role, one of "
                             f"{', '.join(map(str, Role))}; one is not")
        out[key] = Role(role)
    return out


def read_keys_file(path: Path) -> dict[str, Role]:
    """The API keys of ``RAPPORT_API_KEYS_FILE`` (a JSON object ``{key: role}``)."""
    setting = "RAPPORT_API_KEYS_FILE"
    try:
        raw = orjson.loads(path.read_bytes())
    except OSError as exc:
        raise ValueError(f"{setting}: cannot read {path} ({exc.strerror})") from None
    except orjson.JSONDecodeError:
        # orjson's message may quote the content: only say where the file is.
        raise ValueError(f"{setting}: {path} is not valid JSON") from None
    if not isinstance(raw, dict):
        raise ValueError(f'{setting}: {path} must hold a JSON object {{"<key>": "<role>"}}')
    return roles_of(setting, raw)


class KeyRing:
    """Maps API keys to roles; compares in constant time."""

    def __init__(self, keys: Mapping[str, Role]) -> None:
        self._keys = dict(keys)

    @classmethod
    def from_config(
        cls, api_keys: Mapping[str, str], api_keys_file: Path | None, dev_keys: bool
    ) -> KeyRing:
        keys: dict[str, Role] = dict(DEV_API_KEYS) if dev_keys else {}
        if api_keys_file is not None:
            keys.update(read_keys_file(api_keys_file))
        keys.update(roles_of("RAPPORT_API_KEYS", api_keys))
        return cls(keys)

    def role_of(self, key: str) -> Role | None:
        found = None
        for known, role in self._keys.items():
            if hmac.compare_digest(known.encode(), key.encode()):
                found = role
        return found


_bearer = HTTPBearer(auto_error=False, description="API key with a role")


def require(role: Role) -> Callable[..., Role]:
    """FastAPI dependency: 401 without a known key, 403 when its role is not enough."""

    async def check(
        request: Request,
        credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(_bearer)],
    ) -> Role:
        if credentials is None or credentials.scheme.lower() != "bearer":
            raise HTTPException(401, "missing API key: send 'Authorization: Bearer <key>'",
                                headers={"WWW-Authenticate": "Bearer"})
        keyring: KeyRing = request.app.state.keyring
        granted = keyring.role_of(credentials.credentials)
        if granted is None:
            raise HTTPException(401, "unknown API key", headers={"WWW-Authenticate": "Bearer"})
        if not allows(granted, role):
            raise HTTPException(
                403, f"this endpoint needs the '{role}' role; the key has '{granted}'")
        return granted

    return check
