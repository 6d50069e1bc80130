"""After an outage longer than the idle time, every source of demand looks idle; the
counter that takes the partitions over says hello (``DemandStore.hello``) before
counting, so the first source to report its backlog cannot close buckets the others'
backlogs still fall in. Against the real Redis, single and cluster."""

from __future__ import annotations

import uuid

from rapport.profile.demand import clock
from rapport.profile.demand.store import DemandStore
from rapport.shared import keys

CLUSTER = True
DB = 3                # the shared ``redis`` fixture's database (when not on the cluster)
IDLE_S, LATENESS_S = 120.0, 600.0
OUTAGE_S = 3600.0


async def _watermark(store: DemandStore, prefix: str, now: float) -> float | None:
    view = await store.clock_view(prefix)
    return clock.global_watermark(view.clocks, view.active, now=now, idle_s=IDLE_S,
                                  lateness_s=LATENESS_S)


async def test_a_source_reporting_its_backlog_first_does_not_run_ahead(redis):
    prefix = f"it-{uuid.uuid4().hex[:8]}:"
    other = f"it-{uuid.uuid4().hex[:8]}:0"
    store = DemandStore(redis)
    t0, wall0 = 1_000_000.0, 2_000_000.0
    sources = [clock.source_key(f"{prefix}{m}", o) for m in (0, 1) for o in (0, 1, 2)]
    await redis.zadd(keys.demand_clocks(), {**dict.fromkeys(sources, t0), other: t0})
    await redis.zadd(keys.demand_active(), {**dict.fromkeys(sources, wall0), other: wall0})
    now = wall0 + OUTAGE_S

    assert await store.hello(prefix, now) == len(sources)

    # The first source's backlog moves its clock two hours on; the others' still hold.
    first = sources[0]
    await redis.zadd(keys.demand_clocks(), {first: t0 + 7200})
    await redis.zadd(keys.demand_active(), {first: now + 1})
    assert await _watermark(store, prefix, now + 2) == t0 - LATENESS_S
    # Without the hello the others were idle and the first alone set the watermark.
    await redis.zadd(keys.demand_active(), dict.fromkeys(sources[1:], wall0))
    assert await _watermark(store, prefix, now + 2) == t0 + 7200 - LATENESS_S
    # A source that never reports after the hello stops holding once idle.
    await store.hello(prefix, now)
    await redis.zadd(keys.demand_clocks(), dict.fromkeys(sources[1:-1], t0 + 7200))
    await redis.zadd(keys.demand_active(), dict.fromkeys(sources[:-1], now + IDLE_S))
    assert await _watermark(store, prefix, now + 2) == t0 - LATENESS_S
    assert await _watermark(store, prefix, now + IDLE_S + 1) == t0 + 7200 - LATENESS_S
    # Another stream's clocks are not touched.
    assert await redis.zscore(keys.demand_active(), other) == wall0
