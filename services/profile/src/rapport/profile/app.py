"""Profile entrypoint and wiring: one process runs the stream processors
(faust-streaming) and the read API, sharing one event loop."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import uvicorn
from fastapi import FastAPI

from rapport.shared import logs, redis_store
from rapport.shared.auth import KeyRing
from rapport.shared.kafka import KafkaProbe, durable_producer, start_with_retry
from rapport.shared.service import add_readiness_check, create_app

from . import api
from .settings import ProfileSettings
from .store import ProfileStore
from .streams import ProfileProcessor, build_stream_app


def build(settings: ProfileSettings | None = None) -> FastAPI:
    settings = settings or ProfileSettings()

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        redis = redis_store.connect(settings.redis_url)
        store = ProfileStore(redis, group=settings.profile_group_id,
                             timeline_length=settings.timeline_length)
        producer = durable_producer(settings.kafka_bootstrap, client_id="rapport-profile",
                                    linger_ms=0)
        await start_with_retry(producer.start, "profile-updates producer")
        probe = KafkaProbe(settings.kafka_bootstrap)
        stream_app = build_stream_app(bootstrap=settings.kafka_bootstrap,
                                      group_id=settings.profile_group_id,
                                      processor=ProfileProcessor(store, producer),
                                      datadir=settings.profile_data_dir)
        await stream_app.start()
        app.state.profiles = store
        add_readiness_check(app, "kafka", probe.check)
        add_readiness_check(app, "redis", lambda: redis_store.ping(redis))
        try:
            yield
        finally:
            await stream_app.stop()
            await producer.stop()
            await probe.close()
            await redis.aclose()

    app = create_app(service="profile", title="Rapport profile",
                     description="Live single customer view kept by stream processors.",
                     lifespan=lifespan)
    app.state.settings = settings
    app.state.keyring = KeyRing.from_config(settings.api_keys, settings.api_keys_file,
                                            settings.dev_keys)
    app.include_router(api.router)
    return app


def main() -> None:
    settings = ProfileSettings()
    logs.configure(settings.log_level, settings.log_format)
    uvicorn.run(build(settings), host=settings.host, port=settings.profile_port,
                log_config=None, access_log=False)


if __name__ == "__main__":
    main()
