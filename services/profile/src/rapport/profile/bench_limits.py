"""The limits ``rapport bench profile`` measures the profile workers against, in the
same run: a bare aiokafka ``getmany`` loop that only decodes, and a faust-streaming
agent that only counts (what any faust design pays before doing work)."""

from __future__ import annotations

import asyncio
import time
import uuid
from collections.abc import Callable
from pathlib import Path

import faust
from aiokafka import AIOKafkaConsumer


async def getmany_limit(bootstrap: str, topic: str, total: int,
                        decode: Callable[[bytes], object]) -> float:
    """Events per second of a bare consumer that only decodes."""
    consumer = AIOKafkaConsumer(topic, bootstrap_servers=bootstrap, group_id=None,
                                auto_offset_reset="earliest", enable_auto_commit=False,
                                max_partition_fetch_bytes=4 * 1024 * 1024)
    await consumer.start()
    try:
        seen, start = 0, time.perf_counter()
        while seen < total:
            for records in (await consumer.getmany(timeout_ms=1000, max_records=5000)).values():
                for r in records:
                    decode(r.value)
                seen += len(records)
        return total / (time.perf_counter() - start)
    finally:
        await consumer.stop()


async def faust_ceiling(bootstrap: str, topic: str, total: int, datadir: Path) -> float:
    """Events per second of a faust-streaming agent that does nothing but count."""
    app = faust.App(f"bench-faust-{uuid.uuid4().hex[:6]}", broker=f"kafka://{bootstrap}",
                    store="memory://", web_enabled=False, topic_allow_declare=False,
                    topic_disable_leader=True, consumer_auto_offset_reset="earliest",
                    autodiscover=False, datadir=str(datadir))
    source = app.topic(topic, key_type=bytes, value_type=bytes, key_serializer="raw",
                       value_serializer="raw")
    state = {"seen": 0, "first": 0.0, "last": 0.0}
    done = asyncio.Event()

    @app.agent(source)
    async def count(stream: faust.StreamT) -> None:
        async for events in stream.take_events(500, within=0.02):
            if not state["seen"]:
                state["first"] = time.perf_counter()
            state["seen"] += len(events)
            state["last"] = time.perf_counter()
            if state["seen"] >= total:
                done.set()

    await app.start()
    try:
        await asyncio.wait_for(done.wait(), timeout=900)
    finally:
        await app.stop()
    return (state["seen"] - 500) / max(1e-9, state["last"] - state["first"])
