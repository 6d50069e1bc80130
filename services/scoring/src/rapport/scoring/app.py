"""Scoring entrypoint and wiring."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from fastapi import FastAPI

from rapport.shared import redis_store
from rapport.shared.auth import KeyRing
from rapport.shared.deadletter import DeadLetters
from rapport.shared.kafka import KafkaProbe, durable_producer, start_with_retry
from rapport.shared.service import NotReady, add_readiness_check, create_app, serve

from . import api, domain
from .consumers import ScoringConsumer, make_consumer, shutdown
from .settings import ScoringSettings
from .store import ScoringStore


def build(settings: ScoringSettings | None = None) -> FastAPI:
    settings = settings or ScoringSettings()
    policy = domain.ScoringPolicy(cost_per_service_contact=settings.cost_per_service_contact,
                                  default_order_value=settings.default_order_value)
    fingerprints = settings.fingerprints()  # erasure markers are named by them: fail early

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        redis = redis_store.connect(settings.redis_url)
        store = ScoringStore(redis, fingerprints)
        producer = durable_producer(settings.kafka_bootstrap, client_id="rapport-scoring")
        await start_with_retry(producer.start, "scoring dead-letter producer")
        consumer = make_consumer(settings.kafka_bootstrap, settings.scoring_group_id)
        await start_with_retry(consumer.start, "scoring consumer")
        scorer = ScoringConsumer(consumer, store, policy, DeadLetters(producer, stage="scoring"))
        task = asyncio.create_task(scorer.run())
        probe = KafkaProbe(settings.kafka_bootstrap)
        app.state.store = store
        add_readiness_check(app, "kafka", probe.check)
        add_readiness_check(app, "redis", lambda: redis_store.ping(redis))

        async def consumer_alive() -> None:
            if task.done():
                cause = None if task.cancelled() else task.exception()
                raise NotReady("stopped") from cause

        add_readiness_check(app, "consumer", consumer_alive)
        try:
            yield
        finally:
            await shutdown(scorer, task)
            await consumer.stop()
            await producer.stop()
            await probe.close()
            await redis.aclose()

    app = create_app(service="scoring", title="Rapport scoring",
                     description="Customer scores: RFM, lifetime value, churn risk, value tier "
                                 "and profit; response propensities learnt from outcomes.",
                     lifespan=lifespan, max_body_bytes=settings.max_body_bytes)
    app.state.settings = settings
    app.state.policy = policy
    app.state.keyring = KeyRing.from_config(settings.api_keys, settings.api_keys_file,
                                            settings.dev_keys)
    app.include_router(api.router)
    return app


def main() -> None:
    settings = ScoringSettings()
    serve(build, settings, settings.scoring_port)


if __name__ == "__main__":
    main()
