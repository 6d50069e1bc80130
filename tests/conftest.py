"""Test infrastructure: a real Kafka broker and a real Redis of the ``test``
profile (ports and data folders apart from ``make run``'s), started once per
session and stopped at its end. Unit tests never touch them."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest

from rapport.shared.localcluster import LocalCluster
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


@pytest.fixture(scope="session")
def redis_cluster(stack: Stack) -> Iterator[LocalCluster]:
    """A local 3-master Redis Cluster (started the first time a module asks for it)."""
    cluster = LocalCluster(stack)
    cluster.start()
    yield cluster
    cluster.stop()


def pytest_generate_tests(metafunc: pytest.Metafunc) -> None:
    """A module with ``CLUSTER = True`` runs its tests that take ``redis_target`` twice:
    on the single Redis and on the local Redis Cluster."""
    if "redis_target" in metafunc.fixturenames:
        kinds = ["single", "cluster"] if getattr(metafunc.module, "CLUSTER", False) \
            else ["single"]
        metafunc.parametrize("redis_target", kinds, indirect=True, scope="module")


class RedisTarget:
    """Where a test module's Redis data goes: ``url(db)`` is a database of the single
    Redis, or the cluster (which has one keyspace: emptied whenever another ``db`` is
    asked for, so each stays apart)."""

    def __init__(self, stack: Stack, cluster: LocalCluster | None) -> None:
        self.kind = "single" if cluster is None else "cluster"
        self.stack = stack
        self._cluster = cluster
        self._db: int | None = None

    def url(self, db: int) -> str:
        if self._cluster is None:
            return redis_url(self.stack, db)
        if db != self._db:
            self._cluster.flush()
            self._db = db
        return self._cluster.url


@pytest.fixture(scope="module")
def redis_target(request: pytest.FixtureRequest, stack: Stack) -> RedisTarget:
    cluster = request.getfixturevalue("redis_cluster") if request.param == "cluster" \
        else None
    return RedisTarget(stack, cluster)


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
        elif f"{os.sep}browser{os.sep}" in path:
            item.add_marker(pytest.mark.browser)
