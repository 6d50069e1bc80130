"""Demand facts, from stage 2 to demand's own consumer: the codec keeps every
contribution, a republished fact counts once, a conflicting commit is redone from what
was stored, and an erased person never re-enters an audience."""

from __future__ import annotations

import itertools
from datetime import UTC, datetime, timedelta

import pytest
from hypothesis import given
from hypothesis import strategies as st

from rapport.profile.demand import facts
from rapport.profile.demand.clock import Buckets
from rapport.profile.demand.counting import DemandCounter
from rapport.profile.demand.facts import Applied, Fact, FactBatch
from rapport.profile.demand.series import Dimension, Metric, SeriesKey, contribution
from rapport.profile.demand.stage import DemandStage
from rapport.shared.events import Channel, MessageType, Touchpoint
from rapport.shared.profiles import Affinity, CustomerProfile

T0 = datetime(2026, 3, 2, 10, tzinfo=UTC)
MEMBER = "resolved:3"


def order(i: int, total: float = 20.0, category: str = "shoes") -> Touchpoint:
    return Touchpoint(message_id=f"m{i}", source="s", type=MessageType.TRACK,
                      event="Order Completed", channel=Channel.WEB,
                      timestamp=T0 + timedelta(seconds=i), received_at=T0 + timedelta(seconds=i),
                      properties={"total": total, "products": [
                          {"product_id": f"p{i % 3}", "category": category, "price": total,
                           "quantity": 1}]}, user_id="u1")


def test_a_batch_of_facts_survives_its_encoding() -> None:
    profile = CustomerProfile(customer_id="u1", traits={"region": "west"}, segments=["vip"],
                              affinities={"shoes": Affinity(score=2.0, as_of=T0)})
    applied = [Applied(MEMBER, order(i), "u1", offset=100 + i) for i in range(3)]
    built = facts.of_batch(MEMBER, applied, {"u1": profile}, {"gone": ["hats"]}, 30.0)
    [record] = facts.encode(built)
    back = facts.decode(record)
    assert back == built
    first = back.facts[0]
    assert first.offset == 100 and first.event_s == T0.timestamp()
    series = first.contribution().series
    assert series[SeriesKey(Dimension.REGION, "west", Metric.ORDERS)] == 1
    assert series[SeriesKey(Dimension.SEGMENT, "vip", Metric.REVENUE)] == 2000
    assert series == contribution(order(0), region="west", segments=["vip"]).series
    assert back.audience_remove == {"hats": {"gone"}}
    assert set(back.audience_add["shoes"]) == {"u1"}


def test_facts_carry_their_source_and_old_records_still_read() -> None:
    tps = [order(0), order(1).model_copy(update={"event": "Signed Up"})]
    applied = [Applied(MEMBER, tp, "u1", offset=5 + i, source=str(i + 2))
               for i, tp in enumerate(tps)]
    built = facts.of_batch(MEMBER, applied, {}, {}, 30.0)
    [record] = facts.encode(built)
    back = facts.decode(record)
    assert [f.source for f in back.facts] == ["2", "3"]
    assert back.facts == built.facts
    old = (b'{"member":"resolved:3","facts":[[1,10.0,10.0],'
           b'[2,11.0,11.0,"Order Completed","web","west",[],{"total":5}]]}')
    assert [f.source for f in facts.decode(old).facts] == ["", ""]


@given(st.lists(st.integers(min_value=0, max_value=50), max_size=30),
       st.integers(min_value=-1, max_value=50))
def test_past_keeps_exactly_the_facts_after_what_was_counted(offsets, counted) -> None:
    batch = FactBatch(MEMBER, [Fact(o, 0.0, 0.0) for o in offsets])
    assert [f.offset for f in batch.past(counted).facts] == [o for o in offsets if o > counted]


@pytest.mark.parametrize("raw", [
    b"", b"[]", b'{"member": "m"}', b'{"member": "m", "facts": [["x"]]}',
    b'{"member": "m", "facts": [[1, 2, 3, {"nope": 1}, []]]}'])
def test_a_record_that_is_no_facts_batch_is_refused(raw: bytes) -> None:
    with pytest.raises((ValueError, KeyError, TypeError, AttributeError)):
        facts.decode(raw)


def test_a_large_batch_is_split_into_records_under_the_limit_never_inside_a_record() -> None:
    """Stage 2 folds thousands of touchpoints a batch: its facts must fit the producer's
    request limit, and the facts of one source record stay together (counted by its
    offset, a record split in two would lose its second half)."""
    profiles = {f"u{i}": CustomerProfile(customer_id=f"u{i}", affinities={
        f"c{k}": Affinity(score=1.0 + k, as_of=T0) for k in range(3)}) for i in range(400)}
    applied = [Applied(MEMBER, order(i, category=f"c{i % 7}"), f"u{i % 400}", offset=i // 5)
               for i in range(3000)]
    built = facts.of_batch(MEMBER, applied, profiles, {"gone": ["c1", "c2"]}, 30.0)
    records = facts.encode(built, limit=16 * 1024)
    assert len(records) > 10
    assert all(len(r) <= 16 * 1024 for r in records)
    parts = [facts.decode(r) for r in records]
    offsets = [{f.offset for f in part.facts} for part in parts]
    for a, b in itertools.pairwise(offsets):
        assert not a & b  # no record's facts in two
    assert [f for part in parts for f in part.facts] == built.facts
    merged: dict[str, dict[str, float]] = {}
    for part in parts:
        for category, scores in part.audience_add.items():
            merged.setdefault(category, {}).update(scores)
    assert merged == built.audience_add
    assert set().union(*(p.audience_remove.get("c1", set()) for p in parts)) == {"gone"}


class Store:
    """What the counter and the stage read and write, in memory; ``race`` makes the
    next commit find that another worker counted first."""

    def __init__(self) -> None:
        self.hw: dict[str, int] = {}
        self.counts: dict[str, int] = {}
        self.audience: dict[str, dict[str, float]] = {}
        self.reach: dict[str, dict[str, float]] = {"region:west": {"merged": 1.0}}
        self.race: dict[str, int] | None = None

    async def counted(self, members):
        return {m: self.hw.get(m, -1) for m in members}

    async def clocks_of(self, members):
        return {m: None for m in members}

    async def closed_through(self):
        return None

    async def open_sketches(self, wanted):
        return {}

    async def reach_names(self):
        return sorted(self.reach)

    async def commit(self, fx, expected, counted):
        if self.race is not None:
            self.hw.update(self.race)
            self.race = None
        if any(self.hw.get(m, -1) != v for m, v in expected.items()):
            return False
        for (width, _), counts in fx.counts.items():
            if width == 300:
                for name, amount in counts.items():
                    self.counts[name] = self.counts.get(name, 0) + amount
        for category, scores in fx.audience_add.items():
            self.audience.setdefault(category, {}).update(scores)
        for name, gone in fx.reach_remove.items():
            for pid in gone:
                self.reach.get(name, {}).pop(pid, None)
        for name, scores in fx.reach_add.items():
            self.reach.setdefault(name, {}).update(scores)
        self.hw.update(counted)
        return True


class Identities:
    def __init__(self, erased=()) -> None:
        self.erased = set(erased)

    async def erased_profiles(self, ids):
        return {p: 1 for p in ids if p in self.erased}


class Letters:
    def __init__(self) -> None:
        self.sent: list[str] = []

    async def send(self, **kw):
        self.sent.append(kw["reason"])


class Rec:
    def __init__(self, value: bytes, offset: int = 0) -> None:
        self.topic, self.partition, self.offset, self.value = "facts", 0, offset, value


def counter(store: Store, erased=()) -> tuple[DemandCounter, Letters]:
    stage = DemandStage(store, Buckets(base=300), lateness_s=3600, sketch_lg_k=6)
    letters = Letters()
    return DemandCounter(stage, store, Identities(erased), letters), letters


def record(offsets: list[int], audience=None) -> Rec:
    profile = CustomerProfile(customer_id="u1", traits={"region": "west"})
    built = facts.of_batch(MEMBER, [Applied(MEMBER, order(o), "u1", o) for o in offsets],
                           {"u1": profile}, {}, 30.0)
    if audience:
        built.audience_add = audience
    [encoded] = facts.encode(built)
    return Rec(encoded)


ORDERS = SeriesKey(Dimension.TOTAL, "all", Metric.ORDERS).field


async def test_a_batch_done_again_counts_once() -> None:
    store = Store()
    count, _ = counter(store)
    await count.handle_batch([record([1, 2, 3])])
    # Stage 2 redid the batch after a crash, with more records than the first time:
    await count.handle_batch([record([1, 2, 3, 4]), record([1, 2, 3, 4, 5])])
    assert store.counts[ORDERS] == 5
    assert store.hw == {MEMBER: 5}


async def test_a_commit_that_finds_another_worker_first_is_redone_from_what_it_stored(
        ) -> None:
    store = Store()
    count, _ = counter(store)
    store.race = {MEMBER: 2}  # the other worker counted offsets 1 and 2 (not here)
    await count.handle_batch([record([1, 2, 3])])
    assert store.counts[ORDERS] == 1  # only offset 3 was this worker's to count
    assert store.hw == {MEMBER: 3}


async def test_an_erased_person_does_not_come_back_into_an_audience() -> None:
    store = Store()
    count, _ = counter(store, erased={"gone"})
    await count.handle_batch([record([1], audience={"shoes": {"gone": 1.0, "kept": 2.0}})])
    assert store.audience == {"shoes": {"kept": 2.0}}


async def test_reach_sets_are_scored_by_counting_and_lose_the_erased_and_merged_away(
        ) -> None:
    store = Store()
    count, _ = counter(store, erased={"gone"})
    people = {pid: CustomerProfile(customer_id=pid, traits={"region": "west"})
              for pid in ("kept", "gone")}
    built = facts.of_batch(MEMBER, [], people, {"merged": []}, 30.0, now=T0)
    [encoded] = facts.encode(built)
    await count.handle_batch([Rec(encoded)])
    assert set(store.reach["region:west"]) == {"kept"}  # "merged" left, "gone" never came
    assert set(store.reach["total:all"]) == {"kept"}


async def test_an_undecodable_record_is_set_aside_and_the_rest_is_counted() -> None:
    store = Store()
    count, letters = counter(store)
    await count.handle_batch([Rec(b"not json", 0), record([7])])
    assert len(letters.sent) == 1 and "undecodable demand facts" in letters.sent[0]
    assert store.counts[ORDERS] == 1
