"""Next-action entrypoint and wiring."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager

from fastapi import FastAPI

from rapport.shared import logs, redis_store, stopping
from rapport.shared.auth import KeyRing
from rapport.shared.customers import CustomerReadModel
from rapport.shared.deadletter import DeadLetters
from rapport.shared.failures import transient
from rapport.shared.kafka import KafkaProbe, durable_producer, start_with_retry
from rapport.shared.service import (
    NotReady,
    add_readiness_check,
    create_app,
    serve,
    serve_workers,
)

from . import api, attribution_stream
from .attribution_store import AttributionStore
from .contacts import ContactBook
from .deciding import Decider
from .learning import IgnoredSweeper, Learner, make_consumer
from .learning_store import LearningStore
from .parts import ServiceParts
from .settings import NextActionSettings
from .spikes import SpikeWatch
from .store import NextActionStore
from .uplift_store import UpliftStore


def build(settings: NextActionSettings | None = None) -> FastAPI:
    settings = settings or NextActionSettings()

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        redis = redis_store.connect(settings.redis_url)
        fingerprints = settings.fingerprints()
        producer = durable_producer(settings.kafka_bootstrap, client_id="rapport-next-action",
                                    linger_ms=1)
        await start_with_retry(producer.start, "next-action producer")
        consumer = make_consumer(settings.kafka_bootstrap, settings.learner_group_id)
        await start_with_retry(consumer.start, "learner consumer")
        probe = KafkaProbe(settings.kafka_bootstrap)
        store = NextActionStore(redis, settings.decision_ttl_s, fingerprints,
                                cache_s=settings.cache_s,
                                outcome_window_s=settings.outcome_window_s)
        learning = LearningStore(redis, settings.cache_s)
        contacts = ContactBook(redis, fingerprints, settings.contact_rules,
                               settings.budget_ahead)
        reader = CustomerReadModel(redis, settings.scoring_policy())
        app.state.store, app.state.learning, app.state.contacts = store, learning, contacts
        app.state.reader, app.state.producer = reader, producer
        spikes = SpikeWatch(settings.kafka_bootstrap)
        uplift = UpliftStore(redis, settings.uplift_learner, settings.cache_s)
        attribution = AttributionStore(redis, window_s=settings.attribution_window_s,
                                       grace_s=settings.attribution_grace_s,
                                       margin_rate=settings.default_margin_rate)
        attribution_consumer = attribution_stream.make_consumer(
            settings.kafka_bootstrap, settings.attribution_group_id)
        await start_with_retry(attribution_consumer.start, "attribution consumer")
        app.state.uplift = uplift
        app.state.decider = Decider(reader, ServiceParts(store, learning, contacts, producer,
                                                         spikes, uplift),
                                    fingerprints, settings.suitability(),
                                    customer_budget_s=settings.customer_budget_s,
                                    contacts_budget_s=settings.contacts_budget_s)
        learner = Learner(consumer, store, learning, contacts,
                          DeadLetters(producer, stage="next-action"), transient)
        attributor = attribution_stream.Attributor(
            attribution_consumer, attribution, DeadLetters(producer, stage="attribution"),
            transient)
        closer = attribution_stream.WindowCloser(attribution, uplift,
                                                 settings.attribution_close_interval_s)
        tasks = [asyncio.create_task(learner.run()),
                 asyncio.create_task(attributor.run()),
                 asyncio.create_task(closer.run()),
                 asyncio.create_task(IgnoredSweeper(store, learning, producer,
                                                    settings.ignored_sweep_interval_s).run()),
                 asyncio.create_task(spikes.run_forever())]
        add_readiness_check(app, "kafka", probe.check)
        add_readiness_check(app, "redis", lambda: redis_store.ping(redis))

        def alive(task: asyncio.Task[None]) -> Callable[[], Awaitable[None]]:
            async def check() -> None:
                if task.done():
                    cause = None if task.cancelled() else task.exception()
                    raise NotReady("stopped") from cause
            return check

        add_readiness_check(app, "learner", alive(tasks[0]))
        add_readiness_check(app, "attribution", alive(tasks[1]))
        try:
            yield
        finally:
            learner.stop()
            attributor.stop()
            await stopping.bounded(tasks[0], "learner")
            await stopping.bounded(tasks[1], "attributor")
            for task, what in zip(tasks, ("learner", "attributor", "closer", "sweeper",
                                          "spikes"), strict=True):
                await stopping.cancel(task, what)
            for closing, what in ((consumer.stop(), "learner consumer"),
                                  (attribution_consumer.stop(), "attribution consumer"),
                                  (producer.stop(), "producer"), (probe.close(), "probe"),
                                  (redis.aclose(), "redis")):
                await stopping.bounded(closing, what)

    app = create_app(service="next-action", title="Rapport next-action",
                     description="Next-best-action decisions, offer outcomes, the catalog, "
                                 "the policies, their evaluation and the offers report.",
                     lifespan=lifespan, max_body_bytes=settings.max_body_bytes)
    app.state.settings = settings
    app.state.keyring = KeyRing.from_config(settings.api_keys, settings.api_keys_file,
                                            settings.dev_keys)
    app.include_router(api.router)
    return app


def worker_app() -> FastAPI:
    """Factory for each worker process when ``RAPPORT_NEXT_ACTION_WORKERS`` > 1."""
    settings = NextActionSettings()
    logs.configure(settings.log_level, settings.log_format)
    return build(settings)


def main() -> None:
    settings = NextActionSettings()
    if settings.next_action_workers > 1:
        serve_workers("rapport.next_action.app:worker_app", settings,
                      settings.next_action_port, settings.next_action_workers)
        return
    serve(build, settings, settings.next_action_port)


if __name__ == "__main__":
    main()
