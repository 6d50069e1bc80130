"""Headline figures of ``rapport bench <target>``, left in ``.bench/<target>.json`` at
the repository root for ``rapport bench summary`` (gitignored; not a runtime path)."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import orjson

from .localstack import repo_root

TARGETS = ("ingest", "profile")
"""The benches whose figures the summary table shows."""


def folder(root: Path | None = None) -> Path:
    return (root or repo_root()) / ".bench"


class Figures(dict[str, Any]):
    """One bench's figures, written to its file after each one is set: a run that
    fails half-way keeps what it measured."""

    def __init__(self, target: str, root: Path | None = None) -> None:
        super().__init__()
        self.path = folder(root) / f"{target}.json"
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self.path.unlink(missing_ok=True)  # a stale file must not pass for this run's
        self["at"] = datetime.now(UTC).isoformat(timespec="seconds")

    def __setitem__(self, key: str, value: Any) -> None:
        super().__setitem__(key, value)
        self.path.write_bytes(orjson.dumps(dict(self), option=orjson.OPT_INDENT_2
                                           | orjson.OPT_SERIALIZE_NUMPY))

    def update(self, *args: Any, **kwargs: Any) -> None:  # type: ignore[override]
        for key, value in dict(*args, **kwargs).items():
            self[key] = value


def load(root: Path | None = None) -> dict[str, dict[str, Any] | None]:
    """Each target's figures, None where its bench left none (or an unreadable file)."""
    out: dict[str, dict[str, Any] | None] = {}
    for target in TARGETS:
        path = folder(root) / f"{target}.json"
        try:
            out[target] = orjson.loads(path.read_bytes())
        except (FileNotFoundError, orjson.JSONDecodeError):
            out[target] = None
    return out
