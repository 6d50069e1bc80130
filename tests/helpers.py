"""Small async helpers for tests that talk to the real Kafka and Redis."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from typing import Any, TypeVar

import httpx
import orjson
from aiokafka import AIOKafkaConsumer, TopicPartition
from aiokafka.admin import AIOKafkaAdminClient
from fastapi import FastAPI

from rapport.shared.kafka import topic_partitions
from rapport.shared.topics import TopicSpec, facts_beside

T = TypeVar("T")


@asynccontextmanager
async def serving(app: FastAPI) -> AsyncIterator[httpx.AsyncClient]:
    """Run the app's lifespan (real connections) and talk to it in-process."""
    async with app.router.lifespan_context(app):
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://test") as client:
            yield client


async def end_offsets(bootstrap: str, topic: TopicSpec) -> dict[int, int]:
    consumer = AIOKafkaConsumer(bootstrap_servers=bootstrap)
    await consumer.start()
    try:
        parts = [TopicPartition(topic.name, p) for p in range(topic.partitions)]
        ends = await consumer.end_offsets(parts)
        return {tp.partition: off for tp, off in ends.items()}
    finally:
        await consumer.stop()


async def read_since(bootstrap: str, topic: TopicSpec, since: dict[int, int], *,
                     until: Callable[[list[Any]], bool], timeout: float = 20) -> list[Any]:
    """Records appended to ``topic`` after ``since`` (per-partition offsets), until ``until``."""
    consumer = AIOKafkaConsumer(bootstrap_servers=bootstrap, enable_auto_commit=False)
    await consumer.start()
    records: list[Any] = []
    try:
        parts = [TopicPartition(topic.name, p) for p in since]
        consumer.assign(parts)
        for tp in parts:
            consumer.seek(tp, since[tp.partition])
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline and not until(records):
            batch = await consumer.getmany(timeout_ms=300)
            for recs in batch.values():
                records.extend(recs)
        return records
    finally:
        await consumer.stop()


async def eventually(probe: Callable[[], Awaitable[T | None]], timeout: float = 30,
                     interval: float = 0.2) -> T:
    """Poll ``probe`` until it returns something truthy (bounded wait)."""
    deadline = time.monotonic() + timeout
    last: T | None = None
    while time.monotonic() < deadline:
        last = await probe()
        if last:
            return last
        await asyncio.sleep(interval)
    raise AssertionError(f"condition not met within {timeout}s (last: {last!r})")


async def read_between(bootstrap: str, topic: TopicSpec, since: dict[int, int],
                       until: dict[int, int], timeout: float = 60) -> list[Any]:
    """Every record of ``topic`` from offsets ``since`` up to (excluding) ``until``."""
    wanted = sum(until[p] - since[p] for p in since)
    return await read_since(bootstrap, topic, since, until=lambda rs: len(rs) >= wanted,
                            timeout=timeout)


async def open_touchpoints(redis_url: str, values: list[bytes]) -> list[Any]:
    """Touchpoints as read from Kafka, opened with their person's key from the vault in
    ``redis_url`` (None for an erased person): what the profile service sees."""
    from redis.asyncio import Redis

    from rapport.shared.events import Touchpoint
    from rapport.shared.privacy import DEV_PRIVACY_SECRET, Fingerprints
    from rapport.shared.sealing import TouchpointSeals
    from rapport.shared.vault import KeyVault, Sealer

    redis = Redis.from_url(redis_url)
    try:
        seals = TouchpointSeals(Sealer(KeyVault(redis)), Fingerprints(DEV_PRIVACY_SECRET))
        opened = await seals.open([orjson.loads(v) for v in values])
    finally:
        await redis.aclose()
    return [None if o is None else Touchpoint.model_validate(o) for o in opened]


def dev_fingerprint(kind: str, value: str) -> bytes:
    """The Kafka key ingest gives a touchpoint of this identifier (development secret)."""
    from rapport.shared.privacy import DEV_PRIVACY_SECRET, Fingerprints

    return Fingerprints(DEV_PRIVACY_SECRET).of(kind, value).encode()


async def open_letters(redis_url: str, letters: list[dict[str, Any]]) -> list[Any]:
    """Dead letters with their sealed message opened (None for an erased person)."""
    from redis.asyncio import Redis

    from rapport.shared.vault import KeyVault, Sealer

    redis = Redis.from_url(redis_url)
    try:
        return await Sealer(KeyVault(redis)).open_many(letters)
    finally:
        await redis.aclose()


NO_EXPLORATION = {"policies": [{"policy_id": "default", "share": 1.0, "epsilon": 0.0,
                               "holdout_share": 0.0}]}
"""Next-action's policies without exploration or holdouts, for tests that assert what is
made."""


async def without_exploration(client: httpx.AsyncClient) -> None:
    resp = await client.put("/v1/policies", json=NO_EXPLORATION,
                            headers={"Authorization": "Bearer dev-admin"})
    assert resp.status_code == 200, resp.text


def facts_of(resolved: TopicSpec) -> TopicSpec:
    """The demand facts topic of a test's own re-keyed stream (created beside it)."""
    return facts_beside(resolved)


async def committed_and_ends(bootstrap: str, group: str, topics: list[str],
                             ) -> tuple[dict[TopicPartition, int], dict[TopicPartition, int]]:
    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap)
    consumer = AIOKafkaConsumer(bootstrap_servers=bootstrap)
    await admin.start()
    await consumer.start()
    try:
        committed = {tp: meta.offset for tp, meta in
                     (await admin.list_consumer_group_offsets(group)).items()}
        parts = [TopicPartition(t, p)
                 for t, ps in (await topic_partitions(bootstrap, topics)).items() for p in ps]
        assert len({tp.topic for tp in parts}) == len(topics)
        return committed, await consumer.end_offsets(parts)
    finally:
        await consumer.stop()
        await admin.close()


async def caught_up(bootstrap: str, group: str, topics: list[str]) -> bool:
    """Whether the group has committed up to the end of every partition of ``topics``."""
    committed, ends = await committed_and_ends(bootstrap, group, topics)
    return all(committed.get(tp, 0) >= end for tp, end in ends.items())
