"""Ingest entrypoint and wiring."""

from __future__ import annotations

import gc
import os
import shutil
import tempfile
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path

import uvicorn
from fastapi import FastAPI

from rapport.shared import logs, redis_store, stopping
from rapport.shared.kafka import KafkaProbe, durable_producer, start_with_retry
from rapport.shared.service import add_readiness_check, create_app
from rapport.shared.vault import KeyVault, Sealer

from . import api
from .intake import Intake
from .publisher import TouchpointPublisher
from .sealing import IngestSeals
from .settings import IngestSettings
from .store import DedupStore


def build(settings: IngestSettings | None = None) -> FastAPI:
    settings = settings or IngestSettings()
    fingerprints = settings.fingerprints()

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        producer = durable_producer(settings.kafka_bootstrap, client_id="rapport-ingest",
                                    request_timeout_ms=int(settings.ack_timeout_s * 1000),
                                    linger_ms=settings.kafka_linger_ms,
                                    compression=settings.kafka_compression,
                                    max_batch_size=256 * 1024)
        await start_with_retry(producer.start, "kafka producer")
        probe = KafkaProbe(settings.kafka_bootstrap)
        redis = redis_store.connect(settings.redis_url)
        intake = Intake(settings, TouchpointPublisher(producer),
                        DedupStore(redis, stale_ms=int(settings.dedup_stale_s * 1000)),
                        IngestSeals(Sealer(KeyVault(redis)), fingerprints))
        app.state.intake = intake
        add_readiness_check(app, "kafka", probe.check)
        add_readiness_check(app, "redis", lambda: redis_store.ping(redis))
        _tune_gc()
        try:
            yield
        finally:
            for step, what in ((intake.close(), "intake"), (producer.stop(), "producer"),
                               (probe.close(), "probe"), (redis.aclose(), "redis")):
                await stopping.bounded(step, what)

    app = create_app(service="ingest", title="Rapport ingest",
                     description="Segment-compatible HTTP Tracking API: touchpoints from every "
                                 "channel, validated and durably written to Kafka.",
                     lifespan=lifespan, max_body_bytes=settings.max_request_bytes)
    app.state.settings = settings
    app.include_router(api.router)
    return app


def _tune_gc() -> None:
    """Each request parses thousands of objects that live until Kafka acknowledges them
    (tens of ms), long enough to be promoted: with Python's default thresholds the
    collector then ran full passes over every object of the process many times a second
    (~20% of the CPU at saturation). What was loaded at start-up is frozen out of its
    passes, and the youngest generation is collected less often; cycles are still freed."""
    gc.freeze()
    gc.set_threshold(GC_THRESHOLD, 20, 20)


GC_THRESHOLD = 20_000
"""Allocations between collections of the youngest generation (Python's default: 700)."""


def worker_app() -> FastAPI:
    """Factory for each worker process when ``RAPPORT_INGEST_WORKERS`` > 1."""
    settings = IngestSettings()
    logs.configure(settings.log_level, settings.log_format)
    return build(settings)


def main() -> None:
    settings = IngestSettings()
    logs.configure(settings.log_level, settings.log_format)
    if settings.ingest_workers > 1:
        # Each worker is its own process; Prometheus sums their metrics from files.
        metrics_dir = Path(tempfile.mkdtemp(prefix="rapport-ingest-metrics-"))
        os.environ["PROMETHEUS_MULTIPROC_DIR"] = str(metrics_dir)
        uvicorn.run("rapport.ingest.app:worker_app", factory=True, host=settings.host,
                    port=settings.ingest_port, workers=settings.ingest_workers,
                    log_config=None, access_log=False)
        shutil.rmtree(metrics_dir, ignore_errors=True)
        return
    uvicorn.run(build(settings), host=settings.host, port=settings.ingest_port,
                log_config=None, access_log=False)


if __name__ == "__main__":
    main()
