"""Audiences of spikes with no category: the bounded reach sets of regions, channels,
segments and everyone, scored by expected value then P(alive), and their ranking; and
category audiences breaking ties by value."""

from __future__ import annotations

import time
from datetime import UTC, datetime, timedelta

from rapport.profile.demand import audience, facts, reach
from rapport.profile.demand.facts import Applied
from rapport.profile.demand.series import Dimension, Metric, SeriesKey
from rapport.shared.events import Channel, MessageType, Touchpoint
from rapport.shared.profiles import Affinity, ChannelActivity, CustomerProfile
from rapport.shared.purchases import PurchaseHistory
from rapport.shared.scores.compute import score
from rapport.shared.scores.model import PRIOR
from rapport.shared.scores.population import ListPopulation

NOW = datetime(2026, 3, 2, 10, tzinfo=UTC)


def buyer(pid: str, days_ago: list[int], spend: float = 40.0, *, region: str | None = None,
          channels: tuple[str, ...] = ("web",), segments: tuple[str, ...] = ()
          ) -> CustomerProfile:
    history = PurchaseHistory()
    for d in days_ago:
        history.add(NOW - timedelta(days=d), spend)
    p = CustomerProfile(customer_id=pid, traits={"region": region} if region else {},
                        segments=list(segments), purchases=history,
                        channels={c: ChannelActivity(count=1, last_seen=NOW) for c in channels})
    p.metrics.last_seen = NOW - timedelta(days=min(days_ago, default=30))
    p.metrics.revenue = spend * len(days_ago)
    p.metrics.orders = len(days_ago)
    return p


def test_the_rank_score_orders_by_value_then_p_alive_as_the_scoring_service_computes():
    p = buyer("a", [3, 20, 50, 90], 60.0)
    mine = reach.scores_of(p, NOW, PRIOR)
    theirs = score(p, NOW, PRIOR, ListPopulation({"value": [1.0, 2.0, 3.0]}))
    assert mine.clv == theirs.clv  # the same expected value and P(alive)
    model = PRIOR.model_copy(update={"bgnbd": PRIOR.bgnbd.model_copy(update={"r": 0.5})})
    for who in (p, buyer("b", [1]), buyer("c", [400, 2]), buyer("never", [])):
        for when in (NOW, NOW + timedelta(days=17, hours=5)):
            point = reach.Point.from_json(reach.point_of(who, when).to_json())
            s = score(who, when, model, ListPopulation({}))
            assert reach.value_of(point, model) == (s.clv.expected_value_90d, s.clv.p_alive)
    assert reach.rank_score(10.0, 0.9) > reach.rank_score(10.0, 0.2) > reach.rank_score(9.99, 1)
    frequent, lapsed = reach.response(mine), reach.response(
        reach.scores_of(buyer("b", [300], 60.0), NOW, PRIOR))
    assert frequent > lapsed


def test_memberships_and_the_segments_left():
    p = buyer("a", [3], region="north", channels=("web", "email"), segments=("vip",))
    assert reach.memberships(p, {"west"}) == {
        "total:all", "region:north", "region:west", "channel:web", "channel:email",
        "segment:vip"}
    assert reach.removals({"a": p}, {"a": ["vip", "buyers"]}) == {"segment:buyers": {"a"}}
    assert reach.of_series(SeriesKey(Dimension.REGION, "west", Metric.ORDERS)) == \
        "region:west"
    assert reach.of_series(SeriesKey(Dimension.TOTAL, "all", Metric.VIEWS)) == reach.EVERYONE
    assert reach.of_series(SeriesKey(Dimension.CATEGORY, "shoes", Metric.VIEWS)) is None


def test_reach_ranks_members_by_value_skipping_the_gone_and_those_no_longer_members():
    people = {"rich": buyer("rich", [2, 9, 16, 30, 44], 90.0, segments=("vip",)),
              "mid": buyer("mid", [5, 40], 30.0, segments=("vip",)),
              "left": buyer("left", [1, 2, 3], 500.0, segments=()),  # left vip
              "new": buyer("new", [], channels=("web",), segments=("vip",))}
    profiles = {**people, "erased": None}
    scores = {pid: reach.scores_of(p, NOW, PRIOR) for pid, p in people.items()}
    body = reach.rank("segment:vip", profiles, scores, limit=10)
    assert [c["customer_id"] for c in body["customers"]] == ["rich", "mid", "new"]
    assert body["customers"][0]["expected_value_90d"] > body["customers"][1][
        "expected_value_90d"] > 0
    assert body["segments"] == [{"segment": "vip", "customers": 3, "share": 1.0,
                                 "expected_value_90d": round(sum(
                                     c["expected_value_90d"] for c in body["customers"]), 2)}]
    assert [c["customer_id"] for c in reach.rank("channel:email", profiles, scores,
                                                 limit=10)["customers"]] == []
    assert len(reach.rank("total:all", profiles, scores, limit=2)["customers"]) == 2


def test_stage_two_facts_carry_the_reach_sets_and_survive_a_split_encoding():
    tp = Touchpoint(message_id="m1", source="s", type=MessageType.TRACK,
                    event="Order Completed", channel=Channel.WEB, timestamp=NOW,
                    received_at=NOW, user_id="u1",
                    context={"location": {"region": "west"}},
                    properties={"total": 20.0, "products": [
                        {"product_id": "p1", "category": "shoes", "price": 20.0,
                         "quantity": 1}]})
    profiles = {f"u{i}": buyer(f"u{i}", [3, 9], segments=("vip",)) for i in range(60)}
    built = facts.of_batch("resolved:1", [Applied("resolved:1", tp, "u1", 7)], profiles,
                           {"gone1": []}, 30.0, before={"u2": ["vip", "buyers"]}, now=NOW)
    assert "region:west" in built.reach_points["u1"].sets  # where they bought
    assert "region:west" not in built.reach_points["u2"].sets
    assert set(built.reach_points) == set(profiles)
    assert built.reach_remove == {"segment:buyers": {"u2"}}
    assert built.reach_gone == {"gone1"}
    records = facts.encode(built, limit=2048)
    assert len(records) > 1
    parts = [facts.decode(r) for r in records]
    merged: dict[str, reach.Point] = {}
    for part in parts:
        merged.update(part.reach_points)
    assert merged == built.reach_points
    assert set().union(*(p.reach_gone for p in parts)) == {"gone1"}
    scored = reach.additions(merged, PRIOR)
    assert set(scored["region:west"]) == {"u1"}
    assert set(scored["segment:vip"]) == set(profiles)
    assert len(set(scored["total:all"].values())) == 1  # the same purchases, the same


def test_stage_two_picks_points_cheaply_and_counting_scores_them():
    profiles = {f"u{i}": buyer(f"u{i}", [3, 9, 30 + i % 50], segments=("vip",))
                for i in range(500)}
    start = time.perf_counter()
    found = reach.points(profiles, {}, NOW)
    picked = time.perf_counter() - start
    reach.additions(found, PRIOR)
    assert picked < 1.0  # generous: ~15 microseconds a profile here


def test_category_audiences_break_equal_affinities_by_value():
    same = Affinity(score=2.0, as_of=NOW)
    profiles = {pid: CustomerProfile(customer_id=pid, affinities={"shoes": same})
                for pid in ("a", "b", "c")}
    scored = audience.additions(profiles, 30.0)["shoes"]
    candidates = list(scored.items())
    plain = audience.rank(candidates, profiles, now=NOW, half_life_days=30.0, limit=3)
    assert [c["customer_id"] for c in plain["customers"]] == ["a", "b", "c"]
    valued = audience.rank(candidates, profiles, now=NOW, half_life_days=30.0, limit=3,
                           value={"a": 1.0, "b": 5.0, "c": 3.0})
    assert [c["customer_id"] for c in valued["customers"]] == ["b", "c", "a"]
    assert valued["customers"][0]["expected_value_90d"] == 5.0
