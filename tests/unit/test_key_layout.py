"""Where keys live on a Redis Cluster: each atomic write's keys share one slot, and the
profile partitions' slots are spread evenly over the masters."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st
from redis.crc import REDIS_CLUSTER_HASH_SLOTS, key_slot

from rapport.shared import keys
from rapport.shared.layout import ProfileLayout, partition_of, partition_tags


def slot(key: str) -> int:
    return key_slot(key.encode())


@pytest.mark.parametrize("partitions", [1, 2, 3, 4, 8, 12, 16, 24, 48])
def test_each_partition_tag_lands_in_its_own_equal_range_of_slots(partitions: int) -> None:
    tags = partition_tags(partitions)
    width = REDIS_CLUSTER_HASH_SLOTS / partitions
    assert len(set(tags)) == partitions
    for i, tag in enumerate(tags):
        assert i * width <= slot(f"{{{tag}}}") < (i + 1) * width


def test_three_masters_get_as_many_partitions_each() -> None:
    """``redis-cli --cluster create`` gives 3 masters 0-5460, 5461-10922, 10923-16383."""
    ranges = [(0, 5460), (5461, 10922), (10923, 16383)]
    slots = [slot(f"{{{t}}}") for t in partition_tags(12)]
    assert [sum(lo <= s <= hi for s in slots) for lo, hi in ranges] == [4, 4, 4]


@given(st.text(min_size=1, max_size=40), st.integers(min_value=1, max_value=64))
def test_a_profiles_keys_share_its_partitions_slot(pid: str, partitions: int) -> None:
    laid = ProfileLayout(partitions)
    part = partition_of(pid, partitions)
    want = slot(keys.applied_offset("g", "t", part, laid.partition_slot(part)))
    for key in (laid.profile(pid), laid.timeline(pid), laid.handed_over(pid),
                keys.segment_members(laid.slot(pid), "buyers"),
                keys.owner_epoch("g", "t", part, laid.partition_slot(part))):
        assert slot(key) == want
    assert ProfileLayout.profile_id_of(laid.profile(pid)) == pid


def test_profiles_match_the_scan_pattern_and_nothing_else_does() -> None:
    import fnmatch
    laid = ProfileLayout(8)
    pattern = ProfileLayout.profile_pattern("run-*")
    assert fnmatch.fnmatchcase(laid.profile("run-7"), pattern)
    assert not fnmatch.fnmatchcase(laid.timeline("run-7"), pattern)
    assert not fnmatch.fnmatchcase(laid.profile("other"), pattern)


def test_the_identity_graph_and_stage_one_share_one_slot() -> None:
    ids = {slot(k) for k in (
        keys.identity("email", "a@b.c"), keys.profile_identities("p"), keys.merged_into("p"),
        keys.handed_over(keys.IDS, "p"), keys.identity_joins("f"), keys.merge_outbox(),
        keys.erased_identity("f"), keys.erased_profile("f"), keys.resolve_log("g", "t", 3),
        keys.applied_offset("g", "t", 3, keys.IDS), keys.owner_epoch("g", "t", 3, keys.IDS))}
    assert len(ids) == 1
    assert keys.identity("email", "x").startswith(keys.tagged(keys.IDS) + ":identity:")


def test_each_services_transactions_stay_in_one_slot() -> None:
    demand = {slot(k) for k in (
        keys.demand_counts(300, 0), keys.demand_open_sketches(0), keys.demand_clocks(),
        keys.demand_first(), keys.demand_active(), keys.demand_series(), keys.demand_late(),
        keys.demand_audience("shoes"), keys.demand_counted(), keys.demand_closed(),
        keys.demand_detectors(), keys.demand_alerts(), keys.demand_rollup_sketches(3600, 0))}
    learner = {slot(k) for k in (
        keys.learner_model(), keys.decision_outcomes("d"), keys.outcomes_due(),
        keys.offer_report(5), keys.offer_report_hours(), keys.outcome_seen("d", "a", "final"))}
    person = {slot(k) for k in (keys.contacts("fp"),
                                keys.contact_outcome_seen("fp", "d", "a", "accepted"))}
    population = {slot(k) for k in (keys.population_sketches(3), keys.population_points(3),
                                    keys.applied_offset("g", "t", 3, keys.population_slot(3)))}
    models = {slot(k) for k in (keys.clv_model("1"), keys.clv_current(), keys.clv_versions(),
                                keys.clv_version_counter(), keys.clv_fit_lock())}
    for group in (demand, learner, person, population, models):
        assert len(group) == 1
    assert slot(keys.ingest_seen("s", 1, 0)) == slot(keys.ingest_seen("t", 2, 9))
    assert slot(keys.vault_key("a")) == slot(keys.vault_key("b"))


def test_a_rebuild_forgets_every_key_the_profile_service_writes() -> None:
    import fnmatch
    laid = ProfileLayout(4)
    written = [laid.profile("p"), laid.timeline("p"), laid.handed_over("p"),
               keys.segment_members(laid.slot("p"), "s"), keys.identity("email", "e"),
               keys.handed_over(keys.IDS, "p"), keys.demand_counts(300, 0),
               keys.applied_offset("grp", "t", 1, laid.partition_slot(1)),
               keys.applied_offset("grp", "t", 1, keys.IDS), keys.resolve_log("grp", "t", 1),
               keys.layout()]
    patterns = keys.profile_owned_patterns("grp")
    for key in written:
        assert any(fnmatch.fnmatchcase(key, p) for p in patterns), key
    assert not any(fnmatch.fnmatchcase(keys.vault_key("k"), p) for p in patterns)
    assert not any(fnmatch.fnmatchcase(keys.applied_offset("other", "t", 1, keys.IDS), p)
                   for p in patterns)
