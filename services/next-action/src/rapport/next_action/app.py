"""Next-action entrypoint and wiring."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from fastapi import FastAPI

from rapport.shared import redis_store
from rapport.shared.auth import KeyRing
from rapport.shared.customers import CustomerReadModel
from rapport.shared.kafka import KafkaProbe, durable_producer, start_with_retry
from rapport.shared.service import add_readiness_check, create_app, serve

from . import api
from .contacts import ContactBook
from .settings import NextActionSettings
from .store import NextActionStore


def build(settings: NextActionSettings | None = None) -> FastAPI:
    settings = settings or NextActionSettings()

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        redis = redis_store.connect(settings.redis_url)
        producer = durable_producer(settings.kafka_bootstrap, client_id="rapport-next-action",
                                    linger_ms=0)
        await start_with_retry(producer.start, "outcomes producer")
        probe = KafkaProbe(settings.kafka_bootstrap)
        app.state.store = NextActionStore(redis, settings.decision_ttl_s,
                                          settings.fingerprints())
        app.state.reader = CustomerReadModel(redis, settings.scoring_policy())
        app.state.contacts = ContactBook(redis, settings.fingerprints(),
                                         settings.contact_rules, settings.budget_ahead)
        app.state.producer = producer
        add_readiness_check(app, "kafka", probe.check)
        add_readiness_check(app, "redis", lambda: redis_store.ping(redis))
        try:
            yield
        finally:
            await producer.stop()
            await probe.close()
            await redis.aclose()

    app = create_app(service="next-action", title="Rapport next-action",
                     description="Next-best-action decisions, offer outcomes and the catalog.",
                     lifespan=lifespan, max_body_bytes=settings.max_body_bytes)
    app.state.settings = settings
    app.state.keyring = KeyRing.from_config(settings.api_keys, settings.api_keys_file,
                                            settings.dev_keys)
    app.include_router(api.router)
    return app


def main() -> None:
    settings = NextActionSettings()
    serve(build, settings, settings.next_action_port)


if __name__ == "__main__":
    main()
