"""Demand's part of stage 2: turns the touchpoints a batch applied into effects stored in
the batch's own MULTI (with its Kafka offsets), so a redelivered record, skipped by its
offset, is never counted twice, and a resend, recognised by the fold, is never counted.

Each partition's clock and open product sketches have one writer (the worker owning
the partition), so they are cached here between batches and forgotten on a rebalance.
"""

from __future__ import annotations

import time
from collections.abc import Iterable, Mapping
from dataclasses import dataclass

from prometheus_client import Counter
from redis.asyncio.client import Pipeline

from rapport.shared.events import Touchpoint
from rapport.shared.profiles import CustomerProfile

from . import audience, sketches
from .clock import Buckets
from .series import contribution, region_of
from .store import DemandStore
from .tally import DemandEffects, Tally

EVENTS = Counter("rapport_demand_events_total",
                 "Commerce touchpoints counted into demand buckets, or too late to be",
                 ["outcome"])
_CACHE_LIMIT = 20_000


@dataclass(frozen=True)
class Applied:
    """A touchpoint the fold applied (not a resend), from partition ``member``."""

    member: str
    touchpoint: Touchpoint
    profile_id: str


class DemandStage:
    def __init__(self, store: DemandStore, buckets: Buckets, *, lateness_s: float,
                 sketch_lg_k: int, half_life_days: float) -> None:
        self._store = store
        self._buckets = buckets
        self._lateness = lateness_s
        self._lg_k = sketch_lg_k
        self._half_life = half_life_days
        self._clocks: dict[str, float | None] = {}
        self._sketches: dict[tuple[int, str], bytes] = {}
        self._closed: int | None = None

    def forget(self) -> None:
        """Partitions may have moved: what other workers wrote is read again."""
        self._clocks.clear()
        self._sketches.clear()

    async def effects(self, applied: list[Applied], profiles: Mapping[str, CustomerProfile],
                      gone: Mapping[str, Iterable[str]]) -> DemandEffects:
        """The demand effects of a batch: counts, sketches, clocks and audiences.

        ``profiles`` are the batch's changed profiles (segments evaluated), ``gone`` the
        categories of profiles merged away."""
        missing = sorted({a.member for a in applied} - self._clocks.keys())
        self._clocks.update(await self._store.clocks_of(missing))
        closed = await self._store.closed_through() if applied else self._closed
        tally = Tally(self._buckets, lateness_s=self._lateness, clocks=self._clocks,
                      closed_through=closed, wall_now=time.time())
        for a in applied:
            profile = profiles.get(a.profile_id)
            tp = a.touchpoint
            tally.add(a.member, tp.timestamp.timestamp(), tp.received_at.timestamp(),
                      contribution(tp, region=region_of(tp, profile.traits if profile else None),
                                   segments=profile.segments if profile else ()))
        fx = tally.fx
        wanted = sorted(fx.products.keys() - self._sketches.keys())
        self._sketches.update(await self._store.open_sketches(wanted))
        for where, amounts in fx.products.items():
            fx.sketches[where] = sketches.updated(self._sketches.get(where), amounts, self._lg_k)
        fx.audience_add = audience.additions(profiles, self._half_life)
        fx.audience_remove = audience.removals(gone)
        self._closed = closed
        return fx

    def stage(self, tx: Pipeline, fx: DemandEffects) -> None:
        """Queue the effects into the batch's transaction."""
        self._store.stage(tx, fx)

    def committed(self, fx: DemandEffects) -> None:
        """The batch is stored: its clocks and sketches are now what Redis holds."""
        self._clocks.update(fx.clocks)
        self._sketches.update(fx.sketches)
        if self._closed is not None:
            for where in [w for w in self._sketches if w[0] <= self._closed]:
                del self._sketches[where]
        if len(self._sketches) > _CACHE_LIMIT:
            self._sketches.clear()
        EVENTS.labels("counted").inc(fx.counted)
        if fx.late_events:
            EVENTS.labels("late").inc(fx.late_events)
