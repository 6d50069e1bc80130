"""Redis adapter for demand: what stage 2 adds to its batch's MULTI, what the closer
reads and commits (guarded by the last-closed marker), and what the API reads."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

import orjson
from redis.asyncio import Redis
from redis.asyncio.client import Pipeline
from redis.exceptions import WatchError

from rapport.shared import keys

from .clock import DAY, HOUR
from .tally import DemandEffects

_LOCK = """
if redis.call('GET', KEYS[1]) == ARGV[1] then
  redis.call('PEXPIRE', KEYS[1], ARGV[2]) return 1 end
if redis.call('SET', KEYS[1], ARGV[1], 'NX', 'PX', ARGV[2]) then return 1 end
return 0
"""
SKETCH_TTL_S = 3 * DAY
ENDED_ALERT_TTL_S = 7 * DAY


def retention_s(width: int) -> int:
    """How long a bucket's counts are kept: base buckets days, hours weeks, days a year."""
    if width < HOUR:
        return 3 * DAY
    if width < DAY:
        return 40 * DAY
    return 400 * DAY


class StaleClose(RuntimeError):
    """Another closer moved the last-closed marker first: this close is void."""


@dataclass(frozen=True)
class ClockView:
    clocks: dict[str, float]
    active: dict[str, float]
    first: dict[str, float]


@dataclass
class CloseWrites:
    """Everything one closer tick commits."""

    through: int
    slots: dict[str, bytes] = field(default_factory=dict)
    forecast_quality: dict[str, bytes] = field(default_factory=dict)
    evicted: set[str] = field(default_factory=set)
    alerts: dict[str, bytes] = field(default_factory=dict)
    """Open alerts after the tick (the whole set is replaced)."""
    ended: dict[str, bytes] = field(default_factory=dict)
    incidents: dict[str, bytes] = field(default_factory=dict)
    """Open incidents after the tick (the whole set is replaced, as the alerts)."""
    incidents_ended: dict[str, bytes] = field(default_factory=dict)
    product_counts: dict[tuple[int, int], dict[str, int]] = field(default_factory=dict)
    dropped_products: dict[tuple[int, int], set[str]] = field(default_factory=dict)
    rollup_sketches: dict[tuple[int, int], dict[str, bytes]] = field(default_factory=dict)
    closed_buckets: list[int] = field(default_factory=list)


def _int(raw: bytes | None) -> int | None:
    return None if raw is None else int(raw)


def _str_map(raw: dict[bytes, bytes]) -> dict[str, bytes]:
    return {k.decode(): v for k, v in raw.items()}


class DemandStore:
    def __init__(self, redis: Redis, *, audience_size: int = 1000) -> None:
        self._redis = redis
        self._audience_size = audience_size

    # --- stage 2 ------------------------------------------------------------------------
    async def clocks_of(self, members: list[str]) -> dict[str, float | None]:
        if not members:
            return {}
        scores = await self._redis.zmscore(keys.demand_clocks(), members)
        return dict(zip(members, scores, strict=True))

    async def closed_through(self) -> int | None:
        return _int(await self._redis.get(keys.demand_closed()))

    async def open_sketches(self, wanted: list[tuple[int, str]]) -> dict[tuple[int, str], bytes]:
        if not wanted:
            return {}
        async with self._redis.pipeline(transaction=False) as pipe:
            for start, name in wanted:
                pipe.hget(keys.demand_open_sketches(start), name)
            raws = await pipe.execute()
        return {w: r for w, r in zip(wanted, raws, strict=True) if r is not None}

    async def counted(self, members: list[str]) -> dict[str, int]:
        """Per partition member, the highest source offset whose facts are counted."""
        if not members:
            return {}
        raws = await self._redis.hmget(keys.demand_counted(), members)
        return {m: -1 if r is None else int(r) for m, r in zip(members, raws, strict=True)}

    async def commit(self, fx: DemandEffects, expected: dict[str, int],
                     counted: dict[str, int]) -> bool:
        """Store a batch's demand and how far it counted, unless another worker counted
        any of its partitions meanwhile (then False: nothing is stored)."""
        marker = keys.demand_counted()
        async with self._redis.pipeline(transaction=True) as tx:
            await tx.watch(marker)
            members = sorted(expected)
            now = await tx.hmget(marker, members) if members else []
            if any((-1 if r is None else int(r)) != expected[m]
                   for m, r in zip(members, now, strict=True)):
                await tx.unwatch()
                return False
            tx.multi()
            self.stage(tx, fx)
            if counted:
                tx.hset(marker, mapping=counted)
            try:
                await tx.execute()
            except WatchError:
                return False
        return True

    def stage(self, tx: Pipeline, fx: DemandEffects) -> None:
        """Queue a batch's demand effects in a transaction (all in ``{demand}``)."""
        for (width, start), counts in fx.counts.items():
            key = keys.demand_counts(width, start)
            for name, amount in counts.items():
                tx.hincrby(key, name, amount)
            tx.expire(key, retention_s(width))
        for (start, name), raw in fx.sketches.items():
            tx.hset(keys.demand_open_sketches(start), name, raw)
        for start in {start for start, _ in fx.sketches}:
            tx.expire(keys.demand_open_sketches(start), SKETCH_TTL_S)
        if fx.clocks:
            tx.zadd(keys.demand_clocks(), fx.clocks, gt=True)
        if fx.first:
            tx.zadd(keys.demand_first(), fx.first, lt=True)
        if fx.active:
            tx.zadd(keys.demand_active(), fx.active)
        if fx.series:
            tx.sadd(keys.demand_series(), *sorted(fx.series))
        for name, amount in fx.late.items():
            tx.hincrby(keys.demand_late(), name, amount)
        for category, members in fx.audience_remove.items():
            tx.zrem(keys.demand_audience(category), *members)
        for category, scores in fx.audience_add.items():
            key = keys.demand_audience(category)
            tx.zadd(key, scores)
            tx.zremrangebyrank(key, 0, -self._audience_size - 1)
        for name, members in fx.reach_remove.items():
            tx.zrem(keys.demand_reach(name), *members)
        for name, scores in fx.reach_add.items():
            if scores:
                key = keys.demand_reach(name)
                tx.zadd(key, scores)
                tx.zremrangebyrank(key, 0, -self._audience_size - 1)
        if fx.reach_add:
            tx.sadd(keys.demand_reach_names(), *sorted(fx.reach_add))

    async def forget_customer(self, customer_id: str, categories: Iterable[str]) -> None:
        """An erased person leaves every audience."""
        async with self._redis.pipeline(transaction=True) as tx:
            for category in categories:
                tx.zrem(keys.demand_audience(category), customer_id)
            for name in await self.reach_names():
                tx.zrem(keys.demand_reach(name), customer_id)
            await tx.execute()

    async def reach_names(self) -> list[str]:
        """The reach sets in use (region, channel, segment and everyone's)."""
        return sorted(m.decode() for m in await self._redis.smembers(
            keys.demand_reach_names()))

    # --- closer -------------------------------------------------------------------------
    async def hold_lock(self, owner: str, ttl_ms: int) -> bool:
        """Take or extend the closer lock; True while this owner holds it."""
        return bool(await self._redis.eval(_LOCK, 1, keys.demand_closer_lock(), owner,
                                           str(ttl_ms)))

    async def release_lock(self, owner: str) -> None:
        if await self._redis.get(keys.demand_closer_lock()) == owner.encode():
            await self._redis.delete(keys.demand_closer_lock())

    async def hello(self, prefix: str, now: float) -> int:
        """Mark every known source clock of ``prefix`` as live at ``now`` (wall time);
        how many. A counter taking partitions over after an outage longer than the idle
        time does so before counting: else the first source to report its backlog would
        be the only live one, its clock would close buckets the other sources' backlogs
        still fall in, and those would all come late."""
        known = [m for m in await self._redis.zrange(keys.demand_clocks(), 0, -1)
                 if m.decode().startswith(prefix)]
        if known:
            await self._redis.zadd(keys.demand_active(), dict.fromkeys(known, now))
        return len(known)

    async def clock_view(self, prefix: str) -> ClockView:
        async with self._redis.pipeline(transaction=False) as pipe:
            for key in (keys.demand_clocks(), keys.demand_active(), keys.demand_first()):
                pipe.zrange(key, 0, -1, withscores=True)
            rows = await pipe.execute()
        maps = [{m.decode(): s for m, s in r if m.decode().startswith(prefix)} for r in rows]
        return ClockView(*maps)

    async def bucket_counts(self, width: int, start: int) -> dict[str, int]:
        raw = await self._redis.hgetall(keys.demand_counts(width, start))
        return {k.decode(): int(v) for k, v in raw.items()}

    async def open_bucket_sketches(self, start: int) -> dict[str, bytes]:
        return _str_map(await self._redis.hgetall(keys.demand_open_sketches(start)))

    async def rollup_sketches(self, width: int, start: int) -> dict[str, bytes]:
        return _str_map(await self._redis.hgetall(keys.demand_rollup_sketches(width, start)))

    async def registry(self) -> list[str]:
        return sorted(m.decode() for m in await self._redis.smembers(keys.demand_series()))

    async def tracking_state(self) -> tuple[dict[str, Any], dict[str, Any]]:
        """(series field -> detector slot JSON, alert id -> open alert)."""
        async with self._redis.pipeline(transaction=False) as pipe:
            pipe.hgetall(keys.demand_detectors())
            pipe.hgetall(keys.demand_alerts())
            slots, open_alerts = await pipe.execute()
        return ({k.decode(): orjson.loads(v) for k, v in slots.items()},
                {k.decode(): orjson.loads(v) for k, v in open_alerts.items()})

    async def commit_close(self, expected: int | None, writes: CloseWrites) -> None:
        """Store a tick's closes atomically, unless another closer moved the marker."""
        marker = keys.demand_closed()
        async with self._redis.pipeline(transaction=True) as tx:
            await tx.watch(marker)
            if _int(await tx.get(marker)) != expected:
                raise StaleClose(f"last closed bucket moved from {expected}")
            tx.multi()
            tx.set(marker, writes.through)
            if writes.slots:
                tx.hset(keys.demand_detectors(), mapping=writes.slots)
            if writes.forecast_quality:
                tx.hset(keys.demand_forecast_quality(), mapping=writes.forecast_quality)
            if writes.evicted:
                tx.hdel(keys.demand_detectors(), *sorted(writes.evicted))
                tx.hdel(keys.demand_forecast_quality(), *sorted(writes.evicted))
            tx.delete(keys.demand_alerts())
            if writes.alerts:
                tx.hset(keys.demand_alerts(), mapping=writes.alerts)
            for alert_id, body in writes.ended.items():
                tx.set(keys.demand_alert(alert_id), body, ex=ENDED_ALERT_TTL_S)
            tx.delete(keys.demand_incidents())
            if writes.incidents:
                tx.hset(keys.demand_incidents(), mapping=writes.incidents)
            for incident_id, body in writes.incidents_ended.items():
                tx.set(keys.demand_incident(incident_id), body, ex=ENDED_ALERT_TTL_S)
            for (width, start), counts in writes.product_counts.items():
                if counts:
                    tx.hset(keys.demand_counts(width, start), mapping=counts)
                    tx.expire(keys.demand_counts(width, start), retention_s(width))
            for (width, start), names in writes.dropped_products.items():
                if names:
                    tx.hdel(keys.demand_counts(width, start), *sorted(names))
            for (width, start), sketches in writes.rollup_sketches.items():
                key = keys.demand_rollup_sketches(width, start)
                tx.hset(key, mapping=sketches)
                tx.expire(key, SKETCH_TTL_S)
            for start in writes.closed_buckets:
                tx.delete(keys.demand_open_sketches(start))
            await tx.execute()

    # --- reads for the API --------------------------------------------------------------
    async def amounts(self, width: int, starts: list[int], name: str) -> list[int]:
        async with self._redis.pipeline(transaction=False) as pipe:
            for start in starts:
                pipe.hget(keys.demand_counts(width, start), name)
            raws = await pipe.execute()
        return [0 if r is None else int(r) for r in raws]

    async def slot(self, name: str) -> dict[str, Any] | None:
        """One tracked series' slot (detector and forecaster state), if tracked."""
        raw = await self._redis.hget(keys.demand_detectors(), name)
        return None if raw is None else orjson.loads(raw)

    async def forecast_quality(self) -> dict[str, dict[str, Any]]:
        raw = await self._redis.hgetall(keys.demand_forecast_quality())
        return {k.decode(): orjson.loads(v) for k, v in raw.items()}

    async def open_alerts(self) -> list[dict[str, Any]]:
        raw = await self._redis.hgetall(keys.demand_alerts())
        return [orjson.loads(v) for v in raw.values()]

    async def alert(self, alert_id: str) -> tuple[dict[str, Any] | None, bool]:
        """(the alert, whether it is still open)."""
        raw = await self._redis.hget(keys.demand_alerts(), alert_id)
        if raw is not None:
            return orjson.loads(raw), True
        raw = await self._redis.get(keys.demand_alert(alert_id))
        return (None if raw is None else orjson.loads(raw)), False

    async def open_incidents(self) -> dict[str, dict[str, Any]]:
        """Incident id -> open incident."""
        raw = await self._redis.hgetall(keys.demand_incidents())
        return {k.decode(): orjson.loads(v) for k, v in raw.items()}

    async def incident(self, incident_id: str) -> tuple[dict[str, Any] | None, bool]:
        """(the incident, whether it is still open)."""
        raw = await self._redis.hget(keys.demand_incidents(), incident_id)
        if raw is not None:
            return orjson.loads(raw), True
        raw = await self._redis.get(keys.demand_incident(incident_id))
        return (None if raw is None else orjson.loads(raw)), False

    async def audience(self, category: str, limit: int) -> list[tuple[str, float]]:
        rows = await self._redis.zrevrange(keys.demand_audience(category), 0, limit - 1,
                                           withscores=True)
        return [(m.decode(), float(s)) for m, s in rows]

    async def reach(self, name: str, limit: int) -> list[tuple[str, float]]:
        rows = await self._redis.zrevrange(keys.demand_reach(name), 0, limit - 1,
                                           withscores=True)
        return [(m.decode(), float(s)) for m, s in rows]

    async def late(self) -> dict[str, int]:
        return {k.decode(): int(v) for k, v in (await self._redis.hgetall(
            keys.demand_late())).items()}
