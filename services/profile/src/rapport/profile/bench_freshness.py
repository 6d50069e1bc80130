"""Freshness for ``rapport bench profile``: background load through ingest at a steady
rate, and probe customers whose touchpoint is timed from ingest's 200 to the change
being visible on ``GET /v1/customers/{id}``."""

from __future__ import annotations

import asyncio
import time
import uuid

import httpx
import orjson

from rapport.shared.localstack import Stack

AGENT = {"Authorization": "Bearer dev-agent"}


async def freshness(stack: Stack, background: list[bytes], *, rate: float, seconds: float,
                    probes_per_s: float = 10) -> list[float]:
    """ms from ingest's 200 to the probe's touchpoint visible on the profile API, with
    ``background`` (touchpoint records: key NUL value) sent through ingest at ``rate``."""
    ingest, profile = stack.url("ingest"), stack.url("profile")
    run = uuid.uuid4().hex[:6]
    batch = 50
    bodies = [orjson.loads(r.partition(b"\0")[2]) for r in background]
    latencies: list[float] = []

    def segment(tp: dict, i: int) -> dict:
        return {"type": tp["type"], "userId": tp["user_id"] or f"x{i}",
                "event": tp.get("event") or "Product Viewed", "messageId": f"{run}-bg-{i}",
                "timestamp": tp["timestamp"], "properties": tp["properties"]}

    async with httpx.AsyncClient(timeout=10, limits=httpx.Limits(max_connections=64)) as http:
        async def load() -> None:
            interval, i, nxt = batch / rate, 0, time.monotonic()
            end = nxt + seconds
            pending: set[asyncio.Task] = set()
            while nxt < end:
                msgs = [segment(bodies[(i + j) % len(bodies)], i + j) for j in range(batch)]
                i += batch
                task = asyncio.create_task(http.post(f"{ingest}/v1/batch",
                                                     json={"batch": msgs},
                                                     auth=("dev-write-key", "")))
                pending.add(task)
                task.add_done_callback(pending.discard)
                nxt += interval
                await asyncio.sleep(max(0.0, nxt - time.monotonic()))
            await asyncio.gather(*pending)

        async def probe(n: int) -> None:
            user = f"{run}-probe-{n}"
            resp = await http.post(f"{ingest}/v1/track", auth=("dev-write-key", ""), json={
                "userId": user, "event": "Product Viewed", "messageId": f"{run}-p-{n}",
                "properties": {"category": "shoes"}})
            t0 = time.perf_counter()
            if resp.status_code != 200:
                return
            while (waited := time.perf_counter() - t0) < 60:
                r = await http.get(f"{profile}/v1/customers/{user}", headers=AGENT)
                if r.status_code == 200:
                    latencies.append((time.perf_counter() - t0) * 1000)
                    return
                # Fine-grained while it should be visible, coarser after: polling every
                # 2 ms made the probes themselves the profile service's main load.
                await asyncio.sleep(0.005 if waited < 0.1 else 0.05 if waited < 2 else 0.25)

        async def probes() -> None:
            tasks, n = [], 0
            await asyncio.sleep(min(5.0, seconds / 4))  # into the steady state
            end = time.monotonic() + seconds - min(5.0, seconds / 4)
            while time.monotonic() < end:
                tasks.append(asyncio.create_task(probe(n)))
                n += 1
                await asyncio.sleep(1 / probes_per_s)
            await asyncio.gather(*tasks)

        await asyncio.gather(load(), probes())
    return latencies


async def drained(stack: Stack, timeout: float = 900, probes: int = 48) -> None:
    """Wait until touchpoints sent now are visible: the backlog is gone. Partitions catch
    up each at its own pace, so the probes are many people (every partition, but with
    odds of 8 * (7/8)**48, about 1 in 600)."""
    users = [f"drain-{uuid.uuid4().hex[:8]}" for _ in range(probes)]
    async with httpx.AsyncClient(timeout=10) as http:
        for user in users:
            await http.post(f"{stack.url('ingest')}/v1/track", auth=("dev-write-key", ""),
                            json={"userId": user, "event": "Product Viewed"})
        end = time.monotonic() + timeout
        while users and time.monotonic() < end:
            r = await http.get(f"{stack.url('profile')}/v1/customers/{users[-1]}",
                               headers=AGENT)
            if r.status_code == 200:
                users.pop()
                continue
            await asyncio.sleep(0.5)


def pct(values: list[float], q: float) -> float:
    if not values:
        return float("nan")
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]
