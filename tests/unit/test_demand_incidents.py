"""Correlated spike alerts grouped into incidents (the pure domain)."""

import copy
from datetime import UTC, datetime, timedelta

import orjson
from hypothesis import given, settings
from hypothesis import strategies as st

from rapport.profile.demand import incidents
from rapport.profile.demand.incidents import Book, IncidentPolicy, advance

T0 = datetime(2026, 3, 2, tzinfo=UTC)
W = 300


def at(bucket: int) -> int:
    return int((T0 + timedelta(seconds=bucket * W)).timestamp())


def alert(dimension: str, value: str, bucket: int, magnitude: float = 2.0,
          direction: str = "up", category: str | None = None,
          metric: str = "orders") -> dict:
    series = {"dimension": dimension, "value": value, "metric": metric}
    a = {"id": f"{dimension}:{value}:{metric}@{bucket}", "series": series,
         "direction": direction, "magnitude": magnitude,
         "started_at": incidents.iso(at(bucket)), "ended_at": None,
         "peak": {"magnitude": magnitude}}
    if category is not None:
        a["category"] = category
    return a


def ended(a: dict, bucket: int) -> dict:
    return {**a, "ended_at": incidents.iso(at(bucket))}


def surge(bucket: int = 8) -> list[dict]:
    """One shoe surge: the category, two of its products, the total and a region."""
    return [alert("category", "shoes", bucket, 9.0),
            alert("product", "s1", bucket, 12.0, category="shoes"),
            alert("product", "s2", bucket, 4.0, category="shoes"),
            alert("total", "all", bucket, 3.0),
            alert("region", "west", bucket, 3.5)]


def test_one_surge_on_category_products_total_and_region_is_one_incident():
    book = Book()
    records, of = advance(book, at(8), W, surge(), [])
    assert [r["type"] for r in records] == ["demand_incident_started"]
    inc = records[0]["incident"]
    assert inc["size"] == 5 and len(book.open) == 1
    assert {m["id"] for m in inc["members"]} == {a["id"] for a in surge()}
    assert set(of.values()) == {inc["id"]} and len(of) == 5
    assert inc["lead"]["series"]["dimension"] == "category"  # the category names it
    assert inc["category"] == "shoes" and inc["direction"] == "up"
    assert inc["peak_magnitude"] == 12.0
    assert inc["started_at"] == incidents.iso(at(8)) and inc["ended_at"] is None
    assert inc["dimensions"] == ["category", "product", "region", "total"]


@settings(max_examples=60, deadline=None)
@given(st.permutations(range(5)), st.permutations(range(5)))
def test_any_order_of_arrival_within_a_tick_gives_the_same_incidents(first, second):
    base = [*surge(), alert("category", "hats", 8, 5.0, direction="down")]
    a, b = Book(), Book()
    ra, oa = advance(a, at(8), W, [base[i] for i in first] + base[5:], [])
    rb, ob = advance(b, at(8), W, base[5:] + [base[i] for i in second], [])
    assert ra == rb and oa == ob and a.open == b.open


def test_unrelated_alerts_do_not_merge():
    book = Book()
    found = [alert("category", "shoes", 8, 9.0),
             alert("category", "hats", 8, 5.0),          # another category
             alert("category", "bags", 8, -3.0, direction="down"),  # other direction
             alert("product", "x1", 8, 4.0, category="toys")]
    advance(book, at(8), W, found, [])
    assert len(book.open) == 4
    late = alert("category", "scarves", 20, 4.0)          # long after: its own
    shoes_again = alert("product", "s9", 20, 4.0, category="shoes")
    advance(book, at(20), W, [*found, late, shoes_again], [])
    assert len(book.open) == 6


def test_members_join_within_the_window_and_broad_alerts_join_the_largest():
    book = Book()
    advance(book, at(8), W, [alert("total", "all", 8, 3.0)], [])  # broad first
    (iid,) = book.open
    now = [alert("total", "all", 8, 3.0), alert("category", "shoes", 9, 9.0),
           alert("category", "hats", 9, 2.0)]
    records, of = advance(book, at(9), W, now, [])
    assert of[now[1]["id"]] == iid  # shoes, the larger, took the categoryless incident
    assert book.open[iid]["category"] == "shoes"
    assert of[now[2]["id"]] != iid
    assert {r["type"] for r in records} == {"demand_incident_updated",
                                            "demand_incident_started"}
    channel = alert("channel", "web", 11, 2.5)
    _, of = advance(book, at(11), W, [*now, channel], [])
    assert of[channel["id"]] == iid
    too_late = alert("channel", "email", 12, 2.5)
    _, of = advance(book, at(12), W, [*now, channel, too_late], [])
    assert of[too_late["id"]] != iid


def test_an_incident_ends_when_its_last_member_ends_and_a_redo_gives_the_same():
    book = Book()
    first = surge()
    advance(book, at(8), W, first, [])
    saved = copy.deepcopy(book)
    still = first[:2]
    records, _ = advance(book, at(10), W, still, [ended(a, 10) for a in first[2:]])
    assert [r["type"] for r in records] == ["demand_incident_updated"]
    redo = copy.deepcopy(saved)
    assert advance(redo, at(10), W, still, [ended(a, 10) for a in first[2:]])[0] == records
    records, of = advance(book, at(12), W, [], [ended(a, 12) for a in still])
    assert [r["type"] for r in records] == ["demand_incident_ended"]
    inc = records[0]["incident"]
    assert inc["ended_at"] == incidents.iso(at(12)) and not book.open and of == {}
    assert book.ended[inc["id"]] == inc
    assert inc["id"] == incidents.incident_id(first[0]["id"])  # founded by the category


def test_an_alert_gone_without_ending_ends_its_membership():
    book = Book()
    advance(book, at(8), W, [alert("region", "west", 8)], [])
    records, _ = advance(book, at(9), W, [], [])
    assert [r["type"] for r in records] == ["demand_incident_ended"]


def test_stamp_sets_incident_ids_and_a_wider_window_groups_more():
    book = Book()
    a, b = alert("total", "all", 8), alert("region", "west", 14)
    advance(book, at(8), W, [a], [], IncidentPolicy(window_buckets=6))
    _, of = advance(book, at(14), W, [a, b], [], IncidentPolicy(window_buckets=6))
    assert len(book.open) == 1
    both = [dict(a), dict(b)]
    incidents.stamp(both, of)
    assert {x["incident_id"] for x in both} == set(book.open)


SERIES = [("category", "shoes", None), ("product", "s1", "shoes"), ("product", "h1", "hats"),
          ("category", "hats", None), ("total", "all", None), ("region", "west", None),
          ("channel", "web", None), ("segment", "vip", None)]


def _buckets(draws: list[tuple[int, int, bool]]) -> list[tuple[list[dict], list[dict]]]:
    """Per bucket, the open alerts and those that ended: an alert of series ``i`` starts
    at bucket ``b`` (if none is open on it) and lasts ``length`` buckets."""
    starts: dict[int, list[tuple[int, int, bool]]] = {}
    for i, b, down in draws:
        starts.setdefault(b, []).append((i, b, down))
    open_: dict[int, tuple[dict, int]] = {}
    out = []
    for b in range(14):
        ended = []
        for i, (a, until) in list(open_.items()):
            if until == b:
                ended.append({**a, "ended_at": incidents.iso(at(b))})
                del open_[i]
        for i, _, down in starts.get(b, []):
            if i in open_:
                continue
            dim, value, category = SERIES[i]
            a = alert(dim, value, b, 2.0 + i, direction="down" if down else "up",
                      category=category)
            open_[i] = (a, b + 1 + (i + b) % 4)
        out.append(([a for a, _ in open_.values()], ended))
    return out


@settings(max_examples=60, deadline=None)
@given(st.lists(st.tuples(st.integers(0, len(SERIES) - 1), st.integers(0, 9), st.booleans()),
                max_size=12),
       st.sets(st.integers(1, 13)))
def test_ticks_split_anywhere_and_restored_from_storage_give_the_same_incidents(draws, cuts):
    """A tick closes several buckets and commits; a crash redoes it from what was stored
    (JSON): however the buckets fall into ticks, the same records and incidents."""
    plan = _buckets(draws)
    whole, records = Book(), []
    for b, (open_, ended_) in enumerate(plan):
        records += advance(whole, at(b), W, open_, ended_)[0]
    book, again = Book(), []
    for b, (open_, ended_) in enumerate(plan):
        if b in cuts:  # committed, then read back by the next tick
            book = Book(open=orjson.loads(orjson.dumps(book.open)))
        again += advance(book, at(b), W, open_, ended_)[0]
    assert orjson.loads(orjson.dumps(again)) == orjson.loads(orjson.dumps(records))
    assert orjson.loads(orjson.dumps(book.open)) == orjson.loads(orjson.dumps(whole.open))
