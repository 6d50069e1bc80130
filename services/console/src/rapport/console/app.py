"""Console entrypoint and wiring: pages over the other services' APIs, Kafka's own
offsets and the services' /metrics (no data store of its own)."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path

from fastapi import FastAPI
from fastapi.staticfiles import StaticFiles

from rapport.shared import stopping
from rapport.shared.auth import KeyRing
from rapport.shared.kafka import KafkaProbe, start_with_retry
from rapport.shared.service import NotReady, add_readiness_check, create_app, serve

from . import agent, ops, signin
from .ops_collector import Collector
from .screenpop import ScreenPop
from .sessions import Sessions
from .settings import ConsoleSettings
from .upstream import Upstreams

STATIC = Path(__file__).parent / "static"
# One line per upstream call at INFO would drown the console's own log.
logging.getLogger("httpx").setLevel(logging.WARNING)


def build(settings: ConsoleSettings | None = None) -> FastAPI:
    settings = settings or ConsoleSettings()

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        app.state.upstreams = upstreams = Upstreams(settings.upstreams(),
                                                    settings.upstream_timeout_s)
        probe = KafkaProbe(settings.kafka_bootstrap)
        collector = Collector(settings.kafka_bootstrap, settings.upstreams(),
                              settings.ops_sample_s, settings.lag_window_s)
        await start_with_retry(collector.start, "console ops collector")
        pop = ScreenPop(settings.kafka_bootstrap, settings.screen_pop_window_s)
        app.state.collector, app.state.screenpop = collector, pop
        tasks = [asyncio.create_task(pop.run(), name="screen pop"),
                 asyncio.create_task(collector.run(), name="collector")]
        add_readiness_check(app, "kafka", probe.check)

        async def screen_pop_listening() -> None:
            if tasks[0].done():
                raise NotReady("screen-pop stopped")
            if not pop.ready.is_set():
                raise NotReady("screen-pop starting")

        add_readiness_check(app, "screen_pop", screen_pop_listening)
        try:
            yield
        finally:
            for task in tasks:
                await stopping.cancel(task, task.get_name())
            for closing, what in ((collector.close(), "collector"), (probe.close(), "probe"),
                                  (upstreams.close(), "upstreams")):
                await stopping.bounded(closing, what)

    app = create_app(service="console", title="Rapport console",
                     description="The call-center agent's screen (/agent) and the live "
                                 "operations dashboard (/ops): browser pages.",
                     lifespan=lifespan, max_body_bytes=settings.max_body_bytes)
    app.state.settings = settings
    app.state.keyring = KeyRing.from_config(settings.api_keys, settings.api_keys_file,
                                            settings.dev_keys)
    app.state.sessions = Sessions(settings.session_ttl_s)
    app.mount("/static", StaticFiles(directory=STATIC), name="static")
    app.include_router(signin.router)
    app.include_router(agent.router)
    app.include_router(ops.router)
    return app


def main() -> None:
    settings = ConsoleSettings()
    serve(build, settings, settings.console_port)


if __name__ == "__main__":
    main()
