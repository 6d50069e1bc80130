"""Redis connection helper shared by every service."""

from __future__ import annotations

from redis.asyncio import Redis


def connect(url: str) -> Redis:
    """A pooled client returning bytes; callers decode with orjson/pydantic."""
    return Redis.from_url(url, decode_responses=False, health_check_interval=30,
                          socket_connect_timeout=3, socket_timeout=5)


async def ping(redis: Redis) -> None:
    if not await redis.ping():
        raise RuntimeError("redis did not answer PING")
