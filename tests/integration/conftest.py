"""Fixtures shared by the integration tests of one service."""

import pytest

from rapport.ingest.app import build
from rapport.ingest.settings import IngestSettings
from tests.conftest import redis_url
from tests.helpers import serving


@pytest.fixture(scope="module")
async def ingest(stack):
    """Ingest in-process against the real Kafka and Redis (db 1), with the dev keys."""
    settings = IngestSettings(kafka_bootstrap=stack.kafka_bootstrap,
                              redis_url=redis_url(stack, 1), dev_keys=True)
    async with serving(build(settings)) as client:
        yield client
