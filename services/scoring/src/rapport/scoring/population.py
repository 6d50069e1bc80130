"""The live population sketches, kept per profile-updates partition, exactly once.

Each customer with a purchase has one point (last purchase day, purchase days, total
spent, value) in their partition's sketches. When a profile update moves it, the old
point is retracted and the new one added; a tombstone (erasure or merge) retracts it.
The points, the sketches and the partition's applied offset change in one optimistic
transaction (WATCH on the offset), so a redelivered batch changes nothing and a
consumer that lost the partition in a rebalance cannot write over its new owner.

Retractions make the sketches' error grow with the updates seen
(``n_added / n_live`` times KLL's rank error); when the ratio passes
:data:`REBUILD_RATIO`, the partition's sketches are rebuilt from its points.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from prometheus_client import Counter, Gauge
from redis.asyncio import Redis
from redis.exceptions import WatchError

from rapport.shared import keys, topics
from rapport.shared.customers import decode_sketches, encode_sketches
from rapport.shared.privacy import Fingerprints
from rapport.shared.scores.compute import Point
from rapport.shared.scores.population import METRICS, MetricSketches
from rapport.shared.scores.rfm import FREQUENCY, MONETARY, RECENCY, VALUE

REBUILD_RATIO = 4.0
POINTS = Counter("rapport_scoring_population_points_total",
                 "Population points added or retracted", ["change"])
SKETCH_N = Gauge("rapport_scoring_population_sketch_items",
                 "Values in a partition's sketches (added and retracted)",
                 ["partition", "kind"])


@dataclass(frozen=True)
class Change:
    """One record's effect: the customer's new point, or None to retract it."""

    offset: int
    customer_id: str
    point: Point | None


def _encode(p: Point) -> bytes:
    return f"{p.last_day},{p.purchase_days},{p.total!r},{p.value!r}".encode()


def _decode(raw: bytes) -> Point:
    last, days, total, value = raw.decode().split(",")
    return Point(int(last), int(days), float(total), float(value))


def _values(p: Point) -> dict[str, float]:
    return {RECENCY: float(p.last_day), FREQUENCY: float(p.purchase_days),
            MONETARY: p.total, VALUE: p.value}


class PopulationStore:
    def __init__(self, redis: Redis, fingerprints: Fingerprints, group: str) -> None:
        self._redis = redis
        self._fp = fingerprints
        self._group = group

    async def apply(self, partition: int, changes: Sequence[Change]) -> int:
        """Apply a partition's changes not yet applied; the number applied."""
        offset_key = keys.applied_offset(self._group, topics.PROFILE_UPDATES.name, partition,
                                         keys.population_slot(partition))
        sketch_key, points_key = keys.population_sketches(partition), \
            keys.population_points(partition)
        while True:
            async with self._redis.pipeline(transaction=True) as pipe:
                try:
                    await pipe.watch(offset_key)
                    raw = await pipe.get(offset_key)
                    applied = -1 if raw is None else int(raw)
                    todo = [c for c in changes if c.offset > applied]
                    if not todo:
                        return 0
                    fps = [self._fp.profile(c.customer_id) for c in todo]
                    old = dict(zip(fps, await pipe.hmget(points_key, fps), strict=True))
                    sketches = decode_sketches(await pipe.hgetall(sketch_key)) or {
                        m: MetricSketches() for m in METRICS}
                    puts, gone = self._fold(todo, fps, old, sketches)
                    if sum(s.added.n for s in sketches.values()) > REBUILD_RATIO * max(
                            1, sum(s.live for s in sketches.values())) + 4000:
                        sketches = await self._rebuilt(pipe, points_key, puts, gone)
                    pipe.multi()
                    if puts:
                        pipe.hset(points_key, mapping={k: _encode(v) for k, v in puts.items()})
                    if gone:
                        pipe.hdel(points_key, *gone)
                    pipe.hset(sketch_key, mapping=encode_sketches(sketches))
                    pipe.set(offset_key, todo[-1].offset)
                    await pipe.execute()
                except WatchError:
                    continue
            for metric, pair in sketches.items():
                if metric == RECENCY:
                    SKETCH_N.labels(str(partition), "added").set(pair.added.n)
                    SKETCH_N.labels(str(partition), "retracted").set(pair.retracted.n)
            return len(todo)

    @staticmethod
    def _fold(todo: Sequence[Change], fps: list[str], old: dict[str, bytes | None],
              sketches: dict[str, MetricSketches]) -> tuple[dict[str, Point], list[str]]:
        current: dict[str, Point | None] = {fp: None if raw is None else _decode(raw)
                                            for fp, raw in old.items()}
        changed: set[str] = set()
        for change, fp in zip(todo, fps, strict=True):
            before = current.get(fp)
            if before == change.point:
                continue
            if before is not None:
                for metric, value in _values(before).items():
                    sketches[metric].retracted.update(value)
                POINTS.labels("retracted").inc()
            if change.point is not None:
                for metric, value in _values(change.point).items():
                    sketches[metric].added.update(value)
                POINTS.labels("added").inc()
            current[fp] = change.point
            changed.add(fp)
        puts = {fp: p for fp, p in current.items() if fp in changed and p is not None}
        gone = [fp for fp in changed if current[fp] is None and old.get(fp) is not None]
        return puts, gone

    @staticmethod
    async def _rebuilt(pipe, points_key: str, puts: dict[str, Point],
                       gone: list[str]) -> dict[str, MetricSketches]:
        """Fresh sketches of the partition's points as they will be after this batch."""
        sketches = {m: MetricSketches() for m in METRICS}
        stored = await pipe.hgetall(points_key)
        points = {k.decode(): _decode(v) for k, v in stored.items()}
        points.update(puts)
        for fp in gone:
            points.pop(fp, None)
        for p in points.values():
            for metric, value in _values(p).items():
                sketches[metric].added.update(value)
        return sketches
