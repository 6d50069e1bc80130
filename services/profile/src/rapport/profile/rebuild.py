"""Rebuild every profile from Kafka after Redis was lost or flushed.

The touchpoints topic keeps every touchpoint forever and the erasure log keeps
every erased identifier (as a hash), so they are the truth the profiles are a
fold of. A rebuild forgets what Redis holds for the profile service, reloads
the erasures, and rewinds the profile consumer group: touchpoints to their
start, the re-keyed stream to its end (stage 1 re-creates what stage 2 needs).
The workers then rebuild everything as they start. It refuses to run while
profile workers are consuming: their in-flight batches would race with it.
"""

from __future__ import annotations

import asyncio
import time
from dataclasses import dataclass

import orjson
from aiokafka import AIOKafkaConsumer, TopicPartition
from aiokafka.admin import AIOKafkaAdminClient
from aiokafka.structs import OffsetAndMetadata
from redis.asyncio import Redis

from rapport.shared import keys, topics
from rapport.shared.kafka import topic_partitions

from .identity import IdentityStore
from .settings import ProfileSettings


class RebuildRefused(RuntimeError):
    """The rebuild cannot run now (the reason says what to do)."""


@dataclass(frozen=True)
class RebuildReport:
    keys_deleted: int
    erasures_reloaded: int
    touchpoints_to_replay: int


async def active_members(bootstrap: str, group: str) -> int:
    """How many consumers are in the group right now."""
    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap, client_id="rapport-rebuild")
    await admin.start()
    try:
        members = 0
        for response in await admin.describe_consumer_groups([group]):
            for described in response.groups:
                members += len(described[5])  # (error, id, state, protocol type, protocol, members)
        return members
    finally:
        await admin.close()


async def forget_profile_state(redis: Redis, group: str, batch: int = 2000) -> int:
    """Delete every key the profile service owns (nothing of ingest, scoring or offers)."""
    deleted = 0
    for pattern in keys.profile_owned_patterns(group):
        chunk: list[bytes] = []
        async for key in redis.scan_iter(match=pattern, count=batch):
            chunk.append(key)
            if len(chunk) >= batch:
                deleted += await redis.unlink(*chunk)
                chunk = []
        if chunk:
            deleted += await redis.unlink(*chunk)
    return deleted


async def _partitions(bootstrap: str, topic: str) -> list[TopicPartition]:
    found = await topic_partitions(bootstrap, [topic])
    if topic not in found:
        raise RebuildRefused(f"topic {topic!r} does not exist")
    return [TopicPartition(topic, p) for p in found[topic]]


async def reload_erasures(bootstrap: str, consumer: AIOKafkaConsumer,
                          identities: IdentityStore) -> int:
    """Read the whole erasure log back into Redis."""
    parts = await _partitions(bootstrap, topics.ERASURES.name)
    ends = {tp: end for tp, end in (await consumer.end_offsets(parts)).items() if end > 0}
    if not ends:
        return 0
    consumer.assign(list(ends))
    await consumer.seek_to_beginning(*ends)
    erased: dict[str, int] = {}
    while [tp for tp, end in ends.items() if await consumer.position(tp) < end]:
        for records in (await consumer.getmany(timeout_ms=500)).values():
            for r in records:
                if r.value is not None:
                    erased[r.key.decode()] = orjson.loads(r.value)["erased_at_ms"]
    await identities.remember_erasures(erased)
    return len(erased)


async def rewind_group(bootstrap: str, group: str, touchpoints: str, resolved: str) -> int:
    """Touchpoints from their start, the re-keyed stream from its end; returns how many
    touchpoints will be replayed."""
    consumer = AIOKafkaConsumer(bootstrap_servers=bootstrap, group_id=group,
                                enable_auto_commit=False, client_id="rapport-rebuild")
    await consumer.start()
    try:
        starts = await consumer.beginning_offsets(await _partitions(bootstrap, touchpoints))
        ends = await consumer.end_offsets(await _partitions(bootstrap, resolved))
        consumer.assign([*starts, *ends])
        await consumer.commit({tp: OffsetAndMetadata(offset, "")
                               for tp, offset in [*starts.items(), *ends.items()]})
        tp_ends = await consumer.end_offsets(list(starts))
        return sum(tp_ends[tp] - starts[tp] for tp in starts)
    finally:
        await consumer.stop()


async def rebuild(settings: ProfileSettings, redis: Redis, *, wait_s: float = 0,
                  ) -> RebuildReport:
    group = settings.profile_group_id
    deadline = time.monotonic() + wait_s
    # A killed worker stays a member until its session expires: poll the broker.
    busy = await active_members(settings.kafka_bootstrap, group)
    while busy and time.monotonic() < deadline:
        await asyncio.sleep(1)
        busy = await active_members(settings.kafka_bootstrap, group)
    if busy:
        raise RebuildRefused(f"profile workers of group {group!r} are running: stop them, "
                             "rebuild, then start them again")
    deleted = await forget_profile_state(redis, group)
    identities = IdentityStore(redis, settings.fingerprints(),
                               join_limit=settings.identity_join_limit)
    log_reader = AIOKafkaConsumer(bootstrap_servers=settings.kafka_bootstrap,
                                  enable_auto_commit=False, client_id="rapport-rebuild")
    await log_reader.start()
    try:
        erasures = await reload_erasures(settings.kafka_bootstrap, log_reader, identities)
    finally:
        await log_reader.stop()
    replay = await rewind_group(settings.kafka_bootstrap, group, settings.touchpoints_topic,
                                settings.resolved_topic)
    return RebuildReport(keys_deleted=deleted, erasures_reloaded=erasures,
                         touchpoints_to_replay=replay)


async def rebuild_at(kafka_bootstrap: str | None = None, redis_url: str | None = None,
                     *, wait_s: float = 0) -> RebuildReport:
    """Rebuild with the profile service's settings, optionally pointed elsewhere."""
    from rapport.shared import redis_store

    overrides = {k: v for k, v in (("kafka_bootstrap", kafka_bootstrap),
                                   ("redis_url", redis_url)) if v}
    settings = ProfileSettings(**overrides)
    redis = redis_store.connect(settings.redis_url)
    try:
        return await rebuild(settings, redis, wait_s=wait_s)
    finally:
        await redis.aclose()
