"""``rapport bench next-action``'s machinery, tiny: a few offers and customers, about a
second of load at a low rate, on the test stack (Redis database ``DB``; the service as
its own process on the test profile's next-action port). It proves the bench runs
and every figure is there; it asserts no timing."""

import redis

from rapport.next_action import bench
from rapport.next_action.bench_data import catalog
from rapport.next_action.catalog import Catalog
from tests.conftest import redis_url

DB = 13


def test_the_catalog_is_valid_and_varied():
    offers = Catalog.model_validate({"offers": catalog(200)}).offers
    assert len(offers) == 200
    assert len({o.kind for o in offers}) >= 4
    assert any(o.contact for o in offers) and any(o.budget for o in offers)
    assert any(c.field.startswith("context.") for o in offers for c in o.eligibility)


def test_the_bench_runs_tiny(stack):
    """Sync: the bench runs its own event loops."""
    redis.Redis.from_url(redis_url(stack, DB)).flushdb()
    opts = bench.Options(offers=8, customers=200, outcomes=200, rate=20, seconds=1,
                         warmup=0.5, concurrency=2, redis_requests=2000)
    printed: list[str] = []
    rows = dict(bench.run(stack, opts, redis_url=redis_url(stack, DB), say=printed.append))
    print("\n".join(printed))

    decisions = rows["decisions, open loop at 20/s"]
    assert ", 0 errors" in decisions and " 0/s answered" not in decisions, decisions
    assert "{200:" in rows["  the client fell behind its schedule by at most; statuses"]
    assert "customer" in rows["  service-side steps"]
    assert ", 0 errors" in rows["decisions, 2 in flight (saturation)"]
    assert ", 0 errors" in rows["floor: hello, open loop at 20/s"]
    assert any(k.startswith("limit: redis-benchmark EVALSHA") for k in rows)
    assert any(k.startswith("goal: p99 < 10 ms") for k in rows)
