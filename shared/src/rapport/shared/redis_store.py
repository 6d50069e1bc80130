"""Redis connection helper shared by every service: one Redis, or a Redis Cluster when
the URL says so (``redis-cluster://host:port`` of any node; see :mod:`rapport.shared.keys`
for how keys are placed on one)."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

from redis.asyncio import Redis, RedisCluster

CLUSTER_SCHEME = "redis-cluster://"


def connect(url: str) -> Redis:
    """A pooled client returning bytes; callers decode with orjson/pydantic."""
    options: dict[str, Any] = {"decode_responses": False, "socket_connect_timeout": 3,
                               "socket_timeout": 5}
    if url.startswith(CLUSTER_SCHEME):
        return RedisCluster.from_url(  # type: ignore[return-value]  # the same commands
            "redis://" + url.removeprefix(CLUSTER_SCHEME), **options)
    return Redis.from_url(url, health_check_interval=30, **options)


def is_cluster(redis: Redis) -> bool:
    return isinstance(redis, RedisCluster)


async def get_many(redis: Redis, names: list[str] | list[bytes]) -> list[bytes | None]:
    """GET of keys that may lie in different slots (one MGET on a single Redis)."""
    if not names:
        return []
    if is_cluster(redis):
        return await redis.mget_nonatomic(names)  # type: ignore[attr-defined,no-any-return]
    return await redis.mget(names)  # type: ignore[no-any-return]


async def scan_chunks(redis: Redis, match: str, count: int) -> AsyncIterator[list[bytes]]:
    """The keys matching ``match``, in chunks of about ``count`` (every master's on a
    cluster)."""
    chunk: list[bytes] = []
    async for key in redis.scan_iter(match=match, count=count):
        chunk.append(key)
        if len(chunk) >= count:
            yield chunk
            chunk = []
    if chunk:
        yield chunk


async def ping(redis: Redis) -> None:
    if not await redis.ping():
        raise RuntimeError("redis did not answer PING")
