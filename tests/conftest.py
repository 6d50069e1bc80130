"""Test infrastructure: a real Kafka broker and a real Redis of the ``test``
profile (ports and data folders apart from ``make run``'s), started once per
session and stopped at its end. Unit tests never touch them."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest

from rapport.shared.localstack import Stack

ROOT = Path(__file__).resolve().parent.parent


@pytest.fixture(scope="session")
def stack() -> Iterator[Stack]:
    """Kafka + Redis + topics for the whole session (fresh data every run)."""
    stack = Stack("test", root=ROOT, say=lambda m: print(f"[stack] {m}"))
    external = stack.external_kafka or stack.external_redis
    if not external:
        stack.wipe()
    stack.up(services=False)
    yield stack
    if not external:
        stack.down()


def redis_url(stack: Stack, db: int) -> str:
    base = stack.redis_url.rsplit("/", 1)[0]
    return f"{base}/{db}"


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    for item in items:
        path = str(item.fspath)
        if f"{os.sep}integration{os.sep}" in path:
            item.add_marker(pytest.mark.integration)
        elif f"{os.sep}e2e{os.sep}" in path:
            item.add_marker(pytest.mark.e2e)
