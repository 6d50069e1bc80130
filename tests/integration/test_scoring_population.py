"""The population sketches against a real Redis: each change applied once, a moved or
erased customer retracted, rebuilt from the points when retractions pile up, and read
back by the customer read model as the live distribution."""

import random

import pytest

from rapport.scoring.population import REBUILD_RATIO, Change, PopulationStore
from rapport.shared import keys, topics
from rapport.shared.customers import CustomerReadModel, decode_sketches
from rapport.shared.privacy import Fingerprints
from rapport.shared.scores.compute import Point
from rapport.shared.scores.rfm import FREQUENCY, MONETARY, RECENCY

DB = 5
FP = Fingerprints("population-test-secret")


def pt(day: int, days: int = 1, total: float = 10.0) -> Point:
    return Point(last_day=day, purchase_days=days, total=total, value=total / 2)


async def live(redis, metric=RECENCY):
    sketches = decode_sketches(await redis.hgetall(keys.population_sketches(0)))
    return sketches[metric]


async def test_a_batch_applies_once_and_a_moved_customer_is_counted_once(redis):
    store = PopulationStore(redis, FP, "it-pop")
    batch = [Change(0, "a", pt(100)), Change(1, "b", pt(200)), Change(2, "a", pt(300, 2))]
    assert await store.apply(0, batch) == 3
    assert await store.apply(0, batch) == 0  # redelivered: recognised by the offset
    sketch = await live(redis)
    assert sketch.live == 2 and sketch.added.n == 3 and sketch.retracted.n == 1
    assert sketch.share_below(250) == pytest.approx(0.5)  # a moved from 100 to 300
    assert await store.apply(0, [*batch, Change(3, "b", None)]) == 1  # erased: retracted
    sketch = await live(redis)
    assert sketch.live == 1
    assert await redis.hget(keys.population_points(0), FP.profile("b")) is None
    offset = keys.applied_offset("it-pop", topics.PROFILE_UPDATES.name, 0,
                                 keys.population_slot(0))
    assert int(await redis.get(offset)) == 3


async def test_retractions_that_pile_up_rebuild_the_sketches_from_the_points(redis):
    store = PopulationStore(redis, FP, "it-pop")
    rng = random.Random(3)
    offset = 0
    truth: dict[str, Point] = {}
    for _ in range(30):  # 100 customers, each moving again and again
        changes = []
        for c in range(100):
            truth[f"c{c}"] = pt(rng.randrange(0, 1000), rng.randrange(1, 9),
                                round(rng.uniform(1, 500), 2))
            changes.append(Change(offset, f"c{c}", truth[f"c{c}"]))
            offset += 1
        await store.apply(0, changes)
    sketch = await live(redis)
    assert sketch.live == 100
    assert sketch.added.n <= REBUILD_RATIO * 100 + 4000 + 100  # rebuilt along the way
    values = sorted(p.last_day for p in truth.values())
    for q in (250, 500, 750):
        exact = sum(v < q for v in values) / 100
        assert sketch.share_below(q) == pytest.approx(exact, abs=0.05)


async def test_the_read_model_merges_every_partition(redis):
    store = PopulationStore(redis, FP, "it-pop")
    for partition in range(3):
        await store.apply(partition, [Change(0, f"p{partition}-{i}", pt(i, i % 4 + 1, i))
                                      for i in range(50)])
    population = await CustomerReadModel(redis).population()
    assert population.size(RECENCY) == 150 and population.size(MONETARY) == 150
    assert population.share_below(FREQUENCY, 2) == pytest.approx(39 / 150, abs=0.02)
