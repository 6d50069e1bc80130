"""Redis adapter of the uplift loop: the learner in use (one per kind, versioned), and
what each closed attribution window teaches it and adds to the uplift report, applied
once in one optimistic transaction watching the model and the windows' once-markers.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Sequence
from dataclasses import dataclass

import orjson
from redis.asyncio import Redis
from redis.exceptions import WatchError

from rapport.shared import keys

from . import attribution, uplift
from .attribution import Window

MARKER_TTL_S = 120 * 86400
REPORT_TTL_S = 400 * 86400
ROWS_KEPT = 20_000


@dataclass(frozen=True)
class Learnt:
    windows: int
    duplicates: int


class UpliftStore:
    def __init__(self, redis: Redis, learner: str, cache_s: float = 1.0) -> None:
        self._redis = redis
        self._name = learner
        self._cache_s = cache_s
        self._cached: tuple[float, int, uplift.UpliftLearner] | None = None
        self._reading = asyncio.Lock()

    @property
    def name(self) -> str:
        return self._name

    async def learner(self) -> uplift.UpliftLearner:
        """The learner in use, read again when its version moved (checked every
        ``cache_s``); the last one read while Redis fails, a fresh one before any."""
        cached = self._cached
        if cached is not None and (time.monotonic() - cached[0] < self._cache_s
                                   or self._reading.locked()):
            return cached[2]
        async with self._reading:
            key = keys.uplift_model(self._name)
            try:
                version = int(await self._redis.hget(key, "version") or 0)
                if self._cached is None or self._cached[1] != version:
                    state = await self._redis.hget(key, "state")
                    self._cached = (time.monotonic(), version, uplift.load(self._name, state))
                else:
                    self._cached = (time.monotonic(), version, self._cached[2])
            except Exception:
                if self._cached is None:
                    return uplift.load(self._name, None)
            return self._cached[2]

    async def learn(self, windows: Sequence[Window]) -> Learnt:
        """Learn from the closed windows and count them in the report, each once."""
        if not windows:
            return Learnt(0, 0)
        key = keys.uplift_model(self._name)
        marks = [keys.response_seen(w.decision_id) for w in windows]
        while True:
            async with self._redis.pipeline(transaction=True) as pipe:
                try:
                    await pipe.watch(key, *marks)
                    return await self._learn(pipe, key, windows, marks)
                except WatchError:
                    continue

    async def _learn(self, pipe, key: str, windows: Sequence[Window],  # type: ignore[no-untyped-def]
                     marks: list[str]) -> Learnt:
        seen = await pipe.execute_command("MGET", *marks)
        state, version = await pipe.hmget(key, "state", "version")
        model = uplift.load(self._name, state)
        fresh = []
        for w, mark, already in zip(windows, marks, seen, strict=True):
            if already is None and mark not in {m for _, m in fresh}:
                fresh.append((w, mark))
        counts: dict[int, dict[str, float]] = {}
        rows: dict[str, list[bytes]] = {}
        for w, _ in fresh:
            response = attribution.response_of(w)
            if response is not None:
                model.learn(response)
            hour = int(w.decided_at // 3600)
            bucket = counts.setdefault(hour, {})
            for name, amount in attribution.counters(w).items():
                bucket[name] = bucket.get(name, 0.0) + amount
            row = attribution.qini_row(w)
            if row is not None:
                rows.setdefault(row[0], []).append(orjson.dumps(row[1]))
        pipe.multi()
        if fresh:
            pipe.hset(key, mapping={"state": model.to_bytes(),
                                    "version": str(int(version or 0) + len(fresh))})
        for _, mark in fresh:
            pipe.set(mark, "1", ex=MARKER_TTL_S)
        for hour, bucket in counts.items():
            for name, amount in bucket.items():
                pipe.hincrbyfloat(keys.uplift_report(hour), name, amount)
            pipe.expire(keys.uplift_report(hour), REPORT_TTL_S)
            pipe.zadd(keys.uplift_report_hours(), {str(hour): hour})
        for offer, offer_rows in rows.items():
            pipe.lpush(keys.uplift_rows(offer), *offer_rows)
            pipe.ltrim(keys.uplift_rows(offer), 0, ROWS_KEPT - 1)
        await pipe.execute()
        return Learnt(len(fresh), len(windows) - len(fresh))

    async def report_hours(self, since_h: int, until_h: int) -> dict[int, dict[str, float]]:
        hours = [int(h) for h in await self._redis.zrangebyscore(
            keys.uplift_report_hours(), since_h, until_h)]
        async with self._redis.pipeline(transaction=False) as pipe:
            for h in hours:
                pipe.hgetall(keys.uplift_report(h))
            raws = await pipe.execute()
        return {h: {k.decode(): float(v) for k, v in raw.items()}
                for h, raw in zip(hours, raws, strict=True)}

    async def rows(self, offer_ids: Sequence[str]) -> dict[str, list[list[float]]]:
        async with self._redis.pipeline(transaction=False) as pipe:
            for o in offer_ids:
                pipe.lrange(keys.uplift_rows(o), 0, -1)
            raws = await pipe.execute()
        return {o: [orjson.loads(r) for r in raw]
                for o, raw in zip(offer_ids, raws, strict=True)}
