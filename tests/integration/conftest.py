"""Fixtures shared by the integration tests of one service."""

from collections.abc import AsyncIterator

import pytest
from redis.asyncio import Redis

from rapport.ingest.app import build
from rapport.ingest.settings import IngestSettings
from rapport.shared import redis_store
from tests.conftest import redis_url
from tests.helpers import serving


@pytest.fixture(scope="module")
async def ingest(stack):
    """Ingest in-process against the real Kafka and Redis (db 1), with the dev keys."""
    settings = IngestSettings(kafka_bootstrap=stack.kafka_bootstrap,
                              redis_url=redis_url(stack, 1), dev_keys=True)
    async with serving(build(settings)) as client:
        yield client


@pytest.fixture
async def redis(redis_target, request) -> AsyncIterator[Redis]:
    """The Redis database the test module names (``DB``; or the local Redis Cluster, for
    a module with ``CLUSTER = True``), emptied first."""
    client = redis_store.connect(redis_target.url(request.module.DB))
    await client.flushdb()
    yield client
    await client.aclose()
