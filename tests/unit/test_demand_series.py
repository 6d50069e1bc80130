"""Demand series: what a touchpoint contributes, event-time buckets and rollups, the
late rule, and that any order or split of the same events gives the same totals."""

import itertools
from datetime import UTC, datetime, timedelta

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from rapport.profile.demand import clock
from rapport.profile.demand.clock import DAY, HOUR, Buckets
from rapport.profile.demand.series import (
    Contribution,
    Dimension,
    Metric,
    SeriesKey,
    contribution,
    present,
    product_item,
    region_of,
    split_item,
)
from rapport.profile.demand.tally import Tally
from rapport.shared.events import Channel, MessageType, Touchpoint

T0 = datetime(2026, 3, 2, tzinfo=UTC)
B = Buckets(base=300)


def tp(event="Product Viewed", props=None, *, at=None, channel=Channel.WEB, context=None,
       traits=None, mtype=MessageType.TRACK, i=0):
    return Touchpoint(message_id=f"m{i}", source="s", type=mtype, event=event,
                      channel=channel, timestamp=at or T0, received_at=at or T0,
                      properties=props or {}, context=context or {}, traits=traits or {},
                      user_id="u1")


def key(dimension, value, metric):
    return SeriesKey(Dimension(dimension), value, Metric(metric))


def test_a_view_counts_for_every_dimension_and_its_product():
    c = contribution(tp(props={"product_id": "p1", "category": "shoes"}), region="west",
                     segments=["buyers", "vip"])
    assert c.series == {key(d, v, "views"): 1 for d, v in (
        ("total", "all"), ("region", "west"), ("channel", "web"), ("segment", "buyers"),
        ("segment", "vip"), ("category", "shoes"))}
    assert c.products == {(Metric.VIEWS, product_item("p1", "shoes")): 1}


def test_an_order_counts_orders_units_and_revenue_in_cents_per_category_and_product():
    c = contribution(tp("Order Completed", {
        "order_id": "o1", "total": 130.5, "revenue": 120.25, "products": [
            {"product_id": "p1", "category": "shoes", "price": 40.1, "quantity": 2},
            {"product_id": "p2", "category": "shoes", "price": 10, "quantity": 1},
            {"product_id": "p3", "category": "hats", "price": 20}]}),
        region="west", segments=[])
    s = c.series
    assert s[key("total", "all", "orders")] == 1
    assert s[key("total", "all", "units")] == 4
    assert s[key("total", "all", "revenue")] == 12025
    assert s[key("category", "shoes", "orders")] == 1  # one order, whatever its lines
    assert s[key("category", "shoes", "units")] == 3
    assert s[key("category", "shoes", "revenue")] == 9020
    assert s[key("category", "hats", "revenue")] == 2000
    assert c.products[(Metric.UNITS, product_item("p1", "shoes"))] == 2
    assert c.products[(Metric.REVENUE, product_item("p1", "shoes"))] == 8020
    assert c.products[(Metric.ORDERS, product_item("p3", "hats"))] == 1
    assert present(Metric.REVENUE, 12025) == 120.25


def test_searches_adds_and_non_commerce_events():
    search = contribution(tp("Products Searched", {"query": "red shoes"}), region="r",
                          segments=[])
    assert search.series[key("total", "all", "searches")] == 1 and not search.products
    add = contribution(tp("Product Added", {"product_id": 7, "category": "hats",
                                            "quantity": 3}), region="r", segments=[])
    assert add.series[key("category", "hats", "add_to_carts")] == 1
    assert add.products == {(Metric.ADD_TO_CARTS, product_item("7", "hats")): 1}
    for other in (tp("Call Started"), tp(None, mtype=MessageType.IDENTIFY),
                  tp("Order Refunded", {"total": 5})):
        assert not contribution(other, region="r", segments=[])


def test_bad_properties_never_poison_the_counts():
    c = contribution(tp("Order Completed", {"total": "lots", "products": [
        {"product_id": True, "category": "", "price": float("nan"), "quantity": -4},
        "junk", {"category": "x" * 500, "price": 1}]}), region="r", segments=[])
    assert c.series.get(key("total", "all", "revenue"), 0) == 0
    assert all(v >= 0 for v in c.series.values())
    assert not c.products
    assert any(k.value == "x" * 200 for k in c.series)


def test_region_from_location_then_traits_then_country():
    assert region_of(tp(context={"location": {"region": "Bavaria", "country": "DE"}})) == \
        "Bavaria"
    assert region_of(tp(traits={"region": "west"})) == "west"
    assert region_of(tp(), {"region": "east"}) == "east"
    assert region_of(tp(context={"location": {"country": "DE"}})) == "DE"
    assert region_of(tp()) == "unknown"


def test_series_keys_and_items_round_trip():
    k = key("category", "a:b:c", "units")
    assert SeriesKey.parse(k.field) == k and SeriesKey.parse(k.field.encode()) == k
    assert split_item(product_item("p", "c")) == ("p", "c")
    assert split_item(product_item("p", None)) == ("p", None)


def test_buckets_labels_and_rollups():
    assert [clock.label(w) for w in B.widths] == ["5m", "1h", "1d"]
    assert clock.label(30) == "30s"
    start = B.start(T0.timestamp() + 3 * HOUR + 7 * 60)
    assert start == T0.timestamp() + 3 * HOUR + 300
    assert B.containing(start) == [(300, start), (HOUR, start - 300), (DAY, T0.timestamp())]
    with pytest.raises(ValueError):
        Buckets(base=7 * 60)
    with pytest.raises(ValueError):
        Buckets(base=300, rollups=(450,))


def test_late_rule():
    assert not clock.is_late(0, 300, None, None)
    assert not clock.is_late(0, 300, 299.0, None)
    assert clock.is_late(0, 300, 300.0, None)  # the bucket ended at the watermark
    assert clock.is_late(600, 300, 0.0, 600)  # already closed
    assert clock.advance(None, 100, 50) == 100
    # one event far in the future moves the clock only as far as its receipt allows
    assert clock.advance(10.0, 10_000, 100) == 100 + clock.CLOCK_SKEW_S
    assert clock.advance(500.0, 100, 100) == 500.0


def test_global_watermark_waits_for_the_slowest_live_partition():
    clocks = {"t:0": 1000.0, "t:1": 5000.0}
    live = {"t:0": 100.0, "t:1": 100.0}
    assert clock.global_watermark(clocks, live, now=110, idle_s=60, lateness_s=100) == 900
    # t:0 went quiet: it no longer holds the others back
    live = {"t:0": 10.0, "t:1": 100.0}
    assert clock.global_watermark(clocks, live, now=110, idle_s=60, lateness_s=100) == 4900
    # everything went quiet: what was seen closes
    assert clock.global_watermark(clocks, live, now=1000, idle_s=60, lateness_s=100) == 4900
    assert clock.global_watermark({}, {}, now=0, idle_s=1, lateness_s=0) is None


def test_closing_plan():
    plan = clock.closing_plan(None, 0, 1000.0, width=300, backfill_s=DAY, limit=10)
    assert plan == [0, 300, 600]  # 900 ends at 1200, after the watermark
    assert clock.closing_plan(600, 0, 1000.0, width=300, backfill_s=DAY, limit=10) == []
    assert clock.closing_plan(0, 0, 1000.0, width=300, backfill_s=DAY, limit=1) == [300]
    # a gap longer than the backfill is skipped
    far = 10 * DAY + 1000.0
    assert clock.closing_plan(0, 0, far, width=300, backfill_s=600, limit=99) == \
        [10 * DAY + 300, 10 * DAY + 600]  # from the bucket holding watermark - backfill
    assert clock.closing_plan(None, None, 1000.0, width=300, backfill_s=DAY, limit=5) == []
    assert clock.closing_plan(None, 0, None, width=300, backfill_s=DAY, limit=5) == []


# --- any order or split gives the same totals -------------------------------------------

CATEGORIES = ["shoes", "hats", "bags"]


@st.composite
def events(draw, max_minutes=600):
    n = draw(st.integers(1, 40))
    out = []
    for i in range(n):
        minute = draw(st.integers(0, max_minutes))
        at = T0 + timedelta(minutes=minute, seconds=draw(st.integers(0, 59)))
        member = f"t:{draw(st.integers(0, 2))}"
        kind = draw(st.sampled_from(["Product Viewed", "Product Added", "Order Completed",
                                     "Products Searched", "Page"]))
        category = draw(st.sampled_from(CATEGORIES))
        props = {"product_id": f"p{draw(st.integers(0, 5))}", "category": category,
                 "price": draw(st.integers(1, 9999)) / 100, "quantity": draw(st.integers(1, 4))}
        if kind == "Order Completed":
            props = {"total": props["price"] * props["quantity"], "products": [props]}
        event = tp(kind, props, at=at, i=i) if kind != "Page" else \
            tp(None, at=at, mtype=MessageType.PAGE, i=i)
        out.append((member, event))
    return out


def fold(batches, *, lateness_s=10 * DAY, closed_through=None):
    """Tally a sequence of batches as stage 2 does: clocks carried from batch to batch,
    counts summed as Redis HINCRBY would."""
    clocks: dict[str, float | None] = {}
    totals: dict[tuple[int, int], dict[str, int]] = {}
    late: dict[str, int] = {}
    products: dict[tuple[int, str], dict[str, int]] = {}
    for batch in batches:
        tally = Tally(B, lateness_s=lateness_s, clocks=clocks, closed_through=closed_through,
                      wall_now=0)
        for member, event in batch:
            tally.add(member, event.timestamp.timestamp(), event.received_at.timestamp(),
                      contribution(event, region="r", segments=["s"]))
        fx = tally.fx
        clocks.update(fx.clocks)
        for where, counts in fx.counts.items():
            for name, amount in counts.items():
                totals.setdefault(where, {}).setdefault(name, 0)
                totals[where][name] += amount
        for where, items in fx.products.items():
            for item, amount in items.items():
                products.setdefault(where, {}).setdefault(item, 0)
                products[where][item] += amount
        for name, amount in fx.late.items():
            late[name] = late.get(name, 0) + amount
    return totals, late, products


def splits(draw, items):
    cuts = sorted(draw(st.sets(st.integers(1, max(1, len(items) - 1)), max_size=5)))
    bounds = [0, *cuts, len(items)]
    return [items[a:b] for a, b in itertools.pairwise(bounds) if a < b]


@settings(max_examples=150, deadline=None)
@given(events(), st.randoms(use_true_random=False), st.data())
def test_any_order_and_split_gives_the_same_totals(evs, rnd, data):
    expected, late, _ = fold([evs])
    assert not late
    shuffled = list(evs)
    rnd.shuffle(shuffled)
    got, late, _ = fold(splits(data.draw, shuffled))
    assert got == expected


@settings(max_examples=150, deadline=None)
@given(events(), st.data())
def test_late_verdicts_do_not_depend_on_how_a_stream_is_batched(evs, data):
    """With a short lateness many events are late; the same records in the same order,
    cut into batches differently (a redelivery after a crash), get the same verdicts."""
    whole = fold([evs], lateness_s=600)
    assert fold(splits(data.draw, evs), lateness_s=600) == whole


@settings(max_examples=150, deadline=None)
@given(events(), st.integers(0, 600))
def test_rollups_are_the_sums_of_their_buckets(evs, lateness_min):
    totals, _, _ = fold([evs], lateness_s=lateness_min * 60)
    for (width, start), counts in totals.items():
        if width == B.base:
            continue
        summed: dict[str, int] = {}
        for (w, s), base in totals.items():
            if w == B.base and start <= s < start + width:
                for name, amount in base.items():
                    summed[name] = summed.get(name, 0) + amount
        assert counts == summed


@settings(max_examples=150, deadline=None)
@given(events(), st.integers(0, 120))
def test_every_commerce_event_is_counted_or_late_never_both(evs, lateness_min):
    totals, late, _ = fold([evs], lateness_s=lateness_min * 60)
    commerce = [e for _, e in evs if contribution(e, region="r", segments=[])]
    counted_total = sum(counts.get("total:views:all", 0) + counts.get("total:searches:all", 0)
                        + counts.get("total:add_to_carts:all", 0)
                        + counts.get("total:orders:all", 0)
                        for (w, _), counts in totals.items() if w == B.base)
    assert counted_total + late.get("events", 0) == len(commerce)


def test_events_of_a_closed_bucket_are_late_and_counted_as_such():
    at = T0 + timedelta(minutes=2)
    view = tp(props={"category": "shoes"}, at=at)
    tally = Tally(B, lateness_s=DAY, clocks={}, closed_through=B.start(at.timestamp()),
                  wall_now=0)
    assert not tally.add("t:0", at.timestamp(), at.timestamp(),
                         contribution(view, region="r", segments=[]))
    assert tally.fx.late == {"events": 1, "views": 1} and not tally.fx.counts


def test_late_after_the_partition_clock_moved_past_the_lateness():
    tally = Tally(B, lateness_s=600, clocks={}, closed_through=None, wall_now=0)
    c = Contribution()
    c.add(key("total", "all", "views"), 1)
    base = T0.timestamp()
    assert tally.add("t:0", base + 5000, base + 5000, c)
    assert tally.add("t:0", base + 5000 - 600 - 60, base, c)  # bucket ends after watermark
    assert not tally.add("t:0", base + 3000, base, c)  # ended before 5000 - 600
    assert tally.add("t:1", base + 3000, base, c)  # another partition has its own clock
    assert tally.fx.clocks == {"t:0": base + 5000, "t:1": min(base + 3000, base + 60)}


def test_a_partition_fed_by_many_keeps_a_clock_per_source():
    """A re-keyed partition receives each upstream partition's batch in turn: hours of
    event time from one, then the same hours from the next. Judged by one clock, the
    second source's events would all be late; judged per source, none is, and an event
    older than its own source's watermark still is."""
    tally = Tally(B, lateness_s=600, clocks={}, closed_through=None, wall_now=7.0)
    c = Contribution()
    c.add(key("total", "all", "views"), 1)
    base = T0.timestamp()
    hours = [base + i * 600 for i in range(12)]
    for source in ("0", "1"):
        assert all(tally.add("r:3", at, at, c, source) for at in hours)
    assert tally.fx.late == {} and tally.fx.counted == 24
    assert not tally.add("r:3", base, base, c, "1")  # 2 h behind source 1's own clock
    assert tally.fx.clocks == {"r:3<0": hours[-1], "r:3<1": hours[-1]}
    assert tally.fx.active == {"r:3<0": 7.0, "r:3<1": 7.0}
    one_clock = Tally(B, lateness_s=600, clocks={}, closed_through=None, wall_now=0)
    for _source in ("0", "1"):
        verdicts = [one_clock.add("r:3", at, at, c) for at in hours]
    assert verdicts.count(False) == 10


def test_source_keys_name_their_partition():
    assert clock.source_key("rapport.resolved:3", 7) == "rapport.resolved:3<7"
    assert clock.source_key("rapport.resolved:3", "") == "rapport.resolved:3"
    assert clock.source_key("rapport.resolved:3", None) == "rapport.resolved:3"
    assert clock.member_of("rapport.resolved:3<7") == "rapport.resolved:3"
    assert clock.member_of("rapport.resolved:3") == "rapport.resolved:3"
