"""Profile entrypoint and wiring: one process runs both stream stages (one batch
consumer of the group) and the read API, sharing one event loop."""

from __future__ import annotations

import asyncio
import contextlib
import math
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import structlog
from aiokafka.errors import KafkaError
from fastapi import FastAPI

from rapport.shared import batching, layout, redis_store, stopping
from rapport.shared.auth import KeyRing
from rapport.shared.customers import CustomerReadModel
from rapport.shared.deadletter import DeadLetters
from rapport.shared.fencing import Fence
from rapport.shared.kafka import (
    KafkaProbe,
    durable_producer,
    start_with_retry,
    topic_partitions,
)
from rapport.shared.sealing import TouchpointSeals
from rapport.shared.service import NotReady, add_readiness_check, create_app, serve
from rapport.shared.vault import KeyVault, Sealer

from . import api, domain, segments
from .demand import api as demand_api
from .demand import incidents_api
from .demand.clock import Buckets
from .demand.closer import DemandCloser
from .demand.closing import ClosePolicy, DetectorKind, spike_detectors
from .demand.counting import DemandCounter
from .demand.stage import DemandStage
from .demand.store import DemandStore
from .erasure import Eraser
from .identity import IdentityStore
from .settings import ProfileSettings
from .store import ProfileStore, offset_slots
from .streams import IdentityResolver, ProfileFolder, build_stages

log = structlog.get_logger(__name__)
STOP_TIMEOUT_S = 30.0


def build(settings: ProfileSettings | None = None, *,
          detectors: DetectorKind | None = None) -> FastAPI:
    """The profile service; ``detectors`` replaces the demand spike detector (tests)."""
    settings = settings or ProfileSettings()
    segment_defs = segments.load(settings.segments_file)
    buckets = Buckets(base=settings.demand_bucket_s)
    half_life = domain.DEFAULT_POLICY.affinity_half_life_days
    prefix = f"{settings.resolved_topic}:"
    fingerprints = settings.fingerprints()

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        redis = redis_store.connect(settings.redis_url)
        producer = durable_producer(settings.kafka_bootstrap, client_id="rapport-profile",
                                    linger_ms=2, compression="lz4", max_batch_size=256 * 1024)
        await start_with_retry(producer.start, "profile producer")
        laid_out = layout.ProfileLayout(await _partitions(settings.kafka_bootstrap,
                                                          settings.resolved_topic))
        await layout.adopt(redis, laid_out)
        slots = offset_slots(laid_out, settings.resolved_topic)
        fence = Fence(redis, settings.profile_group_id, slots)
        store = ProfileStore(redis, group=settings.profile_group_id, layout=laid_out,
                             resolved_topic=settings.resolved_topic,
                             timeline_length=settings.timeline_length, fence=fence)
        vault = KeyVault(redis)
        sealer = Sealer(vault)
        identities = IdentityStore(redis, fingerprints, join_limit=settings.identity_join_limit)
        probe = KafkaProbe(settings.kafka_bootstrap)
        demand_store = DemandStore(redis, audience_size=settings.demand_audience_size)
        reader = CustomerReadModel(redis, layout=laid_out)
        closer = DemandCloser(
            demand_store, producer, buckets=buckets, kind=detectors or spike_detectors(),
            policy=ClosePolicy(
                width=buckets.base, top_products=settings.demand_top_products,
                product_slots=settings.demand_product_slots,
                max_series=settings.demand_max_series,
                forecast_points=math.ceil(settings.demand_forecast_s / buckets.base)),
            partitions_prefix=prefix, lateness_s=settings.demand_lateness_s,
            idle_s=settings.demand_idle_s, backfill_s=settings.demand_backfill_s,
            sketch_lg_k=settings.demand_sketch_lg_k,
            interval_s=settings.demand_close_interval_s)
        consumer = batching.make_consumer(settings.kafka_bootstrap, settings.profile_group_id,
                                          client_id="rapport-profile",
                                          session_timeout_s=settings.session_timeout_s)
        await start_with_retry(consumer.start, "profile consumer")
        stages = build_stages(
            consumer, group_id=settings.profile_group_id,
            resolver=IdentityResolver(identities, store, producer,
                                      TouchpointSeals(sealer, fingerprints),
                                      settings.resolved_topic),
            folder=ProfileFolder(store, identities, producer, segment_defs,
                                 resolved_topic=settings.resolved_topic,
                                 demand_facts=settings.demand_facts_topic
                                 if settings.demand_enabled else None,
                                 timeline_length=settings.timeline_length,
                                 seals=sealer, fingerprints=fingerprints),
            touchpoints_topic=settings.touchpoints_topic,
            resolved_topic=settings.resolved_topic, fence=fence)
        await stages.subscribe_when_visible(STOP_TIMEOUT_S)
        streaming = asyncio.create_task(stages.run(), name="profile-stages")
        counting = (await _demand_counting(settings, demand_store, buckets, identities,
                                           producer, reader, prefix)
                    if settings.demand_enabled else None)
        await stages.until_joined(STOP_TIMEOUT_S)
        closing = (asyncio.create_task(closer.run(), name="demand-closer")
                   if settings.demand_enabled else None)
        app.state.profiles = store
        app.state.reader = reader
        app.state.demand = demand_api.DemandReads(
            demand_store, store, buckets, prefix, settings.demand_lateness_s, half_life)
        app.state.eraser = Eraser(store, identities, redis, producer, fingerprints, vault)
        add_readiness_check(app, "kafka", probe.check)
        add_readiness_check(app, "redis", lambda: redis_store.ping(redis))

        async def stages_alive() -> None:
            if streaming.done():
                cause = None if streaming.cancelled() else streaming.exception()
                raise NotReady("stopped") from cause
            if not stages.joined.is_set():
                raise NotReady("not yet given its partitions by the group")

        add_readiness_check(app, "stages", stages_alive)
        try:
            yield
        finally:
            closer.stop()
            if closing is not None:
                await stopping.cancel(closing, "demand closer", STOP_TIMEOUT_S)
            await batching.shutdown(stages, streaming, STOP_TIMEOUT_S)
            if counting is not None:
                await counting.stop()
            for step, what in ((consumer.stop(), "consumer"), (producer.stop(), "producer"),
                               (probe.close(), "probe"), (redis.aclose(), "redis")):
                await stopping.bounded(step, what, STOP_TIMEOUT_S)

    app = create_app(service="profile", title="Rapport profile",
                     description="Live single customer view kept by stream processors: "
                                 "identities stitched across channels, history, metrics, "
                                 "affinities, consents and segments.",
                     lifespan=lifespan, max_body_bytes=settings.max_body_bytes)
    app.state.settings = settings
    app.state.segments = segment_defs
    app.state.keyring = KeyRing.from_config(settings.api_keys, settings.api_keys_file,
                                            settings.dev_keys)
    app.include_router(api.router)
    app.include_router(demand_api.router)
    app.include_router(incidents_api.router)
    return app


async def _partitions(bootstrap: str, topic: str) -> int:
    """How many partitions the re-keyed stream has (what profiles are laid out by);
    waits a while for a topic being created."""
    for _ in range(int(STOP_TIMEOUT_S / 0.5)):
        with contextlib.suppress(KafkaError):
            found = (await topic_partitions(bootstrap, [topic])).get(topic)
            if found:
                return len(found)
        await asyncio.sleep(0.5)
    raise RuntimeError(f"topic {topic} not found: create the topics first (`rapport topics`)")


class _Counting:
    """Demand counting's own consumer group, in this process (its loop and consumer)."""

    def __init__(self, loop: batching.BatchLoop, consumer: object,
                 task: asyncio.Task[None]) -> None:
        self.loop, self._consumer, self.task = loop, consumer, task

    async def stop(self) -> None:
        await batching.shutdown(self.loop, self.task, STOP_TIMEOUT_S)
        await stopping.bounded(self._consumer.stop(),  # type: ignore[attr-defined]
                               "demand consumer", STOP_TIMEOUT_S)


async def _demand_counting(settings: ProfileSettings, store: DemandStore, buckets: Buckets,
                           identities: IdentityStore, producer: object,
                           reader: CustomerReadModel, prefix: str) -> _Counting:
    group = settings.demand_group_id or f"{settings.profile_group_id}-demand"
    counter = DemandCounter(
        DemandStage(store, buckets, lateness_s=settings.demand_lateness_s,
                    sketch_lg_k=settings.demand_sketch_lg_k, models=reader.model),
        store, identities, DeadLetters(producer, "demand"))  # type: ignore[arg-type]
    consumer = batching.make_consumer(settings.kafka_bootstrap, group,
                                      client_id="rapport-profile-demand",
                                      session_timeout_s=settings.session_timeout_s)
    await start_with_retry(consumer.start, "demand consumer")

    async def assigned(_: object) -> None:
        await counter.assigned(prefix)

    async def revoked(_: object) -> None:
        counter.forget()

    loop = batching.BatchLoop(consumer, {settings.demand_facts_topic: counter.handle_batch},
                              group=group, on_assigned=assigned, on_revoked=revoked)
    await loop.subscribe_when_visible(STOP_TIMEOUT_S)
    return _Counting(loop, consumer, asyncio.create_task(loop.run(), name="demand-counting"))


def main() -> None:
    settings = ProfileSettings()
    serve(build, settings, settings.profile_port)


if __name__ == "__main__":
    main()
