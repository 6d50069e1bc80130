"""Demand counting, on its own consumer group: the facts stage 2 publishes
(:mod:`.facts`) become counts, sketches, clocks and audiences, stored in one
transaction of the ``{demand}`` slot with how far each partition was counted, so a
republished fact (stage 2 redoing a batch after a crash) never counts twice and two
workers (a rebalance) never both count one batch.

Each partition's clock and open product sketches have one writer (the worker owning
the facts partition), so they are cached here between batches and forgotten on a
rebalance or when a commit finds another worker was first.
"""

from __future__ import annotations

import time
from collections.abc import Awaitable, Callable, Iterable

from prometheus_client import Counter

from rapport.shared.scores.model import PRIOR, ClvModel

from . import clock, reach, sketches
from .clock import Buckets
from .facts import FactBatch
from .store import DemandStore
from .tally import DemandEffects, Tally

__all__ = ["EVENTS", "DemandStage"]

EVENTS = Counter("rapport_demand_events_total",
                 "Commerce touchpoints counted into demand buckets, or too late to be",
                 ["outcome"])
_CACHE_LIMIT = 20_000


class DemandStage:
    def __init__(self, store: DemandStore, buckets: Buckets, *, lateness_s: float,
                 sketch_lg_k: int,
                 models: Callable[[], Awaitable[ClvModel]] | None = None) -> None:
        """``models``: the lifetime-value model in use, which the reach sets of demand
        spikes are scored by (None: the published prior)."""
        self._models = models
        self._store = store
        self._buckets = buckets
        self._lateness = lateness_s
        self._lg_k = sketch_lg_k
        self._clocks: dict[str, float | None] = {}
        self._sketches: dict[tuple[int, str], bytes] = {}
        self._closed: int | None = None

    def forget(self) -> None:
        """Partitions may have moved: what other workers wrote is read again."""
        self._clocks.clear()
        self._sketches.clear()

    async def effects(self, batches: Iterable[FactBatch]) -> DemandEffects:
        """The demand effects of fact batches (already past what was counted), in order."""
        batches = list(batches)
        missing = sorted({clock.source_key(b.member, f.source) for b in batches
                          for f in b.facts} - self._clocks.keys())
        self._clocks.update(await self._store.clocks_of(missing))
        closed = await self._store.closed_through() if batches else self._closed
        tally = Tally(self._buckets, lateness_s=self._lateness, clocks=self._clocks,
                      closed_through=closed, wall_now=time.time())
        for batch in batches:
            for fact in batch.facts:
                tally.add(batch.member, fact.event_s, fact.received_s, fact.contribution(),
                          fact.source)
        fx = tally.fx
        wanted = sorted(fx.products.keys() - self._sketches.keys())
        self._sketches.update(await self._store.open_sketches(wanted))
        for where, amounts in fx.products.items():
            fx.sketches[where] = sketches.updated(self._sketches.get(where), amounts, self._lg_k)
        for batch in batches:
            for category, scores in batch.audience_add.items():
                fx.audience_add.setdefault(category, {}).update(scores)
            for category, gone in batch.audience_remove.items():
                fx.audience_remove.setdefault(category, set()).update(gone)
            for set_name, gone in batch.reach_remove.items():
                fx.reach_remove.setdefault(set_name, set()).update(gone)
        found = {pid: p for b in batches for pid, p in b.reach_points.items()}
        if found:
            model = PRIOR if self._models is None else await self._models()
            fx.reach_add = reach.additions(found, model)
        merged_away = {pid for b in batches for pid in b.reach_gone}
        if merged_away:  # out of every reach set, whichever they were in
            for set_name in {*await self._store.reach_names(), *fx.reach_add}:
                fx.reach_remove.setdefault(set_name, set()).update(merged_away)
                scores = fx.reach_add.get(set_name, {})
                for pid in merged_away & scores.keys():
                    del scores[pid]
        self._closed = closed
        return fx

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
