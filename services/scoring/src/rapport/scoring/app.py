"""Scoring entrypoint and wiring."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from fastapi import FastAPI

from rapport.shared import batching, redis_store, stopping
from rapport.shared.auth import KeyRing
from rapport.shared.customers import CustomerReadModel
from rapport.shared.deadletter import DeadLetters
from rapport.shared.kafka import KafkaProbe, durable_producer, start_with_retry
from rapport.shared.service import NotReady, add_readiness_check, create_app, serve

from . import api
from .consumers import ScoringConsumer, make_consumer
from .models import ModelStore
from .population import PopulationStore
from .refit import Refitter, publish_metrics
from .settings import ScoringSettings
from .store import ScoringStore


def build(settings: ScoringSettings | None = None) -> FastAPI:
    settings = settings or ScoringSettings()
    policy = settings.scoring_policy()
    fingerprints = settings.fingerprints()  # erasure markers are named by them: fail early

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        redis = redis_store.connect(settings.redis_url)
        store = ScoringStore(redis, fingerprints)
        reader = CustomerReadModel(redis, policy)
        models = ModelStore(redis)
        refitter = Refitter(reader, models)
        producer = durable_producer(settings.kafka_bootstrap, client_id="rapport-scoring")
        await start_with_retry(producer.start, "scoring dead-letter producer")
        consumer = make_consumer(settings.kafka_bootstrap, settings.scoring_group_id)
        await start_with_retry(consumer.start, "scoring consumer")
        scorer = ScoringConsumer(consumer, store, reader,
                                 PopulationStore(redis, fingerprints, settings.scoring_group_id),
                                 DeadLetters(producer, stage="scoring"))
        task = asyncio.create_task(scorer.run())
        schedule = asyncio.create_task(refitter.run_schedule(
            settings.refit_interval_s, settings.refit_first_delay_s))
        probe = KafkaProbe(settings.kafka_bootstrap)
        app.state.reader, app.state.models, app.state.refitter = reader, models, refitter
        with contextlib.suppress(Exception):
            publish_metrics(await reader.model())
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
            await stopping.cancel(schedule, "refit schedule")
            await batching.shutdown(scorer, task)
            for step, what in ((consumer.stop(), "consumer"), (producer.stop(), "producer"),
                               (probe.close(), "probe"), (redis.aclose(), "redis")):
                await stopping.bounded(step, what)

    app = create_app(service="scoring", title="Rapport scoring",
                     description="Customer scores at any moment: RFM by population "
                                 "quintiles, lifetime value (BG/NBD + Gamma-Gamma fitted on "
                                 "the live population), churn risk, value tier and profit.",
                     lifespan=lifespan, max_body_bytes=settings.max_body_bytes)
    app.state.settings = settings
    app.state.keyring = KeyRing.from_config(settings.api_keys, settings.api_keys_file,
                                            settings.dev_keys)
    app.include_router(api.router)
    return app


def main() -> None:
    settings = ScoringSettings()
    serve(build, settings, settings.scoring_port)


if __name__ == "__main__":
    main()
