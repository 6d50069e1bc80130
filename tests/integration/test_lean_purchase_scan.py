"""The refit's lean scan against a real Redis: every stored profile read (over many SCAN
batches, with the next fetched while one is parsed), the same summaries as validating
each profile whole, and the refitter gathering exactly those."""

from __future__ import annotations

import random
from collections import Counter
from dataclasses import astuple
from datetime import UTC, datetime, timedelta

from rapport.scoring.models import ModelStore
from rapport.scoring.refit import Refitter
from rapport.shared.customers import CustomerReadModel
from rapport.shared.layout import ProfileLayout
from rapport.shared.profiles import Affinity, CustomerProfile

DB = 12
START = datetime(2024, 1, 1, 12, tzinfo=UTC)
AS_OF = START + timedelta(days=200)


def profiles(n: int, seed: int = 5) -> list[CustomerProfile]:
    rng = random.Random(seed)
    out = []
    for i in range(n):
        p = CustomerProfile(customer_id=f"lean-{i}")
        for _ in range(rng.choice([0, 0, 1, 1, 2, 3, 8])):  # some never bought
            p.purchases.add(START + timedelta(days=rng.randrange(0, 400)),
                            round(rng.uniform(0, 300), 2))
        if i % 7 == 0:  # an affinity whose name is the field's
            p.affinities["purchases"] = Affinity(score=1.0, as_of=START)
        out.append(p)
    return out


def counted(summaries) -> Counter:
    return Counter(astuple(s) for s in summaries)


async def test_the_lean_scan_reads_every_profile_as_validating_it_would(redis) -> None:
    people = profiles(4500)
    await redis.mset({ProfileLayout().profile(p.customer_id): p.to_stored() for p in people})
    await redis.set(ProfileLayout().profile("plain-json"), people[1].to_bytes())  # the topic's form
    reader = CustomerReadModel(redis)

    lean = [s async for batch in reader.scan_purchase_summaries(AS_OF, count=500)
            for s in batch]
    whole = [p.purchases.summary(AS_OF) async for batch in reader.scan_profiles()
             for p in batch]
    assert counted(lean) == counted(s for s in whole if s is not None)
    expected = [p.purchases.summary(AS_OF) for p in [*people, people[1]]]
    assert counted(lean) == counted(s for s in expected if s is not None)
    assert len(lean) > 2000  # many batches, and the customers without a purchase left out

    gathered = await Refitter(reader, ModelStore(redis)).summaries(AS_OF)
    assert counted(gathered) == counted(lean)


async def test_closing_the_scan_early_leaves_no_task_behind(redis) -> None:
    laid = ProfileLayout()
    await redis.mset({laid.profile(p.customer_id): p.to_stored() for p in profiles(3000)})
    scan = CustomerReadModel(redis).scan_purchase_summaries(AS_OF, count=200)
    first = await anext(scan)
    assert first
    await scan.aclose()  # the prefetch in flight is cancelled, not left to fail later
