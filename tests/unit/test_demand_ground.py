"""Unvisited ground (:mod:`rapport.profile.demand.ground`): a point inside the range but
far from every value seen, in a gap that is wide next to how far out it lies."""

from __future__ import annotations

import math
import random

import orjson
from hypothesis import given
from hypothesis import strategies as st

from rapport.profile.demand.detector import DetectorConfig, SpikeDetector
from rapport.profile.demand.ground import ALL, Ground


def fed(values: list[float], bins: int = 128) -> Ground:
    g = Ground()
    low = high = values[0]
    for v in values:
        low, high = min(low, v), max(high, v)
        g.update(v, low, high, margin=0.0, mean=0.0, ratio=0.0, bins=bins, judge=False)
    return g


def test_a_gap_between_two_levels_is_new_ground_and_its_edges_are_not():
    g = fed([0.0, 1.0, 2.0, 9.0, 10.0])            # slices of 1/8: 0-2 and 9-10 visited
    assert g.update(5.5, 0.0, 10.0, margin=3.0, mean=1.0, ratio=0.5, bins=128)
    assert g.clearance(5.5) == 0.0                 # and now it is visited
    assert not g.update(7.0, 0.0, 10.0, margin=1.0, mean=1.0, ratio=0.5, bins=128)
    assert 0.375 <= g.clearance(7.5) <= 0.5        # 0.5 from 7 (to within a slice)
    assert g.update(3.9, 0.0, 10.0, margin=1.2, mean=1.0, ratio=0.5, bins=128)   # 5.5: 1.6
    assert not g.update(3.0, 0.0, 10.0, margin=0.9, mean=1.0, ratio=0.5, bins=128)


def test_a_narrow_gap_far_out_is_a_heavy_tail_not_new_ground():
    """Value 80 lies 20 from the nearest value seen (60), but 79 from the mean: a gap
    that narrow next to its distance out is what a heavy tail leaves."""
    g = fed([1.0, 0.0, 2.0, 60.0, 100.0])
    assert not g.update(80.0, 0.0, 100.0, margin=5.0, mean=1.0, ratio=0.5, bins=128)
    assert g.update(30.0, 0.0, 100.0, margin=5.0, mean=1.0, ratio=0.5, bins=128)


def test_a_widened_range_merges_slices_and_keeps_what_was_visited():
    g = fed([0.0, 10.0, 5.0], bins=16)
    width = 2.0 ** (g.scale or 0)
    g.update(1000.0, 0.0, 1000.0, margin=0.0, mean=0.0, ratio=0.0, bins=16, judge=False)
    assert 2.0 ** (g.scale or 0) >= 1000.0 / 16 > width
    for seen in (0.0, 5.0, 10.0, 1000.0):
        assert g.clearance(seen) == 0.0
    assert g.clearance(500.0) >= 500.0 - 2 * 2.0 ** (g.scale or 0)


def test_the_first_values_of_a_flat_start_are_remembered():
    g = fed([7.0] * 5 + [17.0])
    assert g.clearance(7.0) == 0.0 and g.clearance(17.0) == 0.0
    assert 5.0 - 2 * 10 / 128 <= g.clearance(12.0) <= 5.0


@given(st.lists(st.floats(-1e6, 1e6), min_size=2, max_size=80), st.integers(2, 256),
       st.floats(-2e6, 2e6))
def test_clearance_is_a_lower_bound_within_two_slices(values, bins, probe):
    g = fed(values, bins)
    if max(values) == min(values):
        assert g.clearance(probe) == math.inf
        return
    nearest = min(abs(probe - v) for v in values)
    width = 2.0 ** (g.scale or 0)
    assert nearest - 2 * width <= g.clearance(probe) <= nearest
    assert 2 * (max(values) - min(values)) / bins <= 2 * width


@given(st.lists(st.floats(-1e6, 1e6), min_size=2, max_size=60), st.floats(0, 1e5),
       st.floats(0, 2), st.integers(2, 256))
def test_a_value_seen_before_is_never_new_ground(values, margin, ratio, bins):
    g = Ground()
    low = high = values[0]
    seen: set[float] = set()
    for v in values:
        low, high = min(low, v), max(high, v)
        new = g.update(v, low, high, margin, mean=0.0, ratio=ratio, bins=bins)
        assert not (new and v in seen)
        seen.add(v)


def test_state_round_trips_and_an_older_state_raises_nothing():
    g = fed([0.0, 1.0, 9.0, 10.0, 1e300])
    assert Ground.from_state(orjson.loads(orjson.dumps(g.to_state()))) == g
    older = Ground.from_state(None)
    assert older.visited == ALL
    assert not any(older.update(v, 0.0, 10.0, 0.5, 0.0, 0.0, 128) for v in (5.0, 3.0, 7.0))
    assert Ground.from_state(older.to_state()).visited == ALL


def spikes_of_one_height(rng: random.Random, n: int) -> list[float]:
    """Low noise with a spike of one height every 288 points (a nightly job)."""
    return [1.5 if i % 288 == 100 else 0.1 + 0.1 * rng.random() for i in range(n)]


def test_a_spike_of_a_height_never_seen_is_found():
    """A spike of half the usual height is no prediction error to speak of on a series
    that spikes anyway, and lies within the range: it is on ground never visited."""
    found = 0
    for seed in range(5):
        values = spikes_of_one_height(random.Random(seed), 3000)
        values[2500] = 0.7
        d = SpikeDetector(step_s=300)
        readings = [d.update(1.7e9 + i * 300, v) for i, v in enumerate(values)]
        scores = [r.score for r in readings]
        found += scores[2500] == 1.0 and readings[2500].view == "ground"
        assert max(scores[150:2500]) < 0.5
    assert found == 5


def heavy_bursts(rng: random.Random, n: int) -> list[float]:
    return [float(rng.randint(0, 6) + (int(10 * rng.paretovariate(1.5))
                                       if rng.random() < 0.03 else 0)) for _ in range(n)]


def detections(values: list[float], config: DetectorConfig) -> int:
    d = SpikeDetector(step_s=300, config=config)
    return sum(d.update(1.7e9 + i * 300, v).score >= 0.5 and i >= 150
               for i, v in enumerate(values))


def test_heavy_tailed_bursts_find_no_new_ground():
    """Bursts of any height (Pareto) leave gaps between their rare far values and land in
    them all the time: without the ratio to the distance out, 8 more detections in these
    ten series (4 with half the ratio; measured 2026-12-04), with it none."""
    without = DetectorConfig(ground_ratio=math.inf)
    series = [heavy_bursts(random.Random(1000 + s), 288 * 14) for s in range(10)]
    extra = sum(detections(v, DetectorConfig()) - detections(v, without) for v in series)
    assert extra <= 1
    loose = sum(detections(v, DetectorConfig(ground_ratio=0.0)) - detections(v, without)
                for v in series)
    assert loose > 5


def test_a_detector_restored_from_a_state_without_ground_takes_all_ground_as_visited():
    """An older version's state has no ground: the restored detector must not take the
    values it sees next for new ground (it never saw where the old ones fell)."""
    d = SpikeDetector(step_s=300)
    values = spikes_of_one_height(random.Random(9), 3000)
    for i, v in enumerate(values[:2000]):
        d.update(1.7e9 + i * 300, v)
    state = orjson.loads(orjson.dumps(d.to_state()))
    assert SpikeDetector.from_state(state).ground == d.ground
    del state["ground"]
    restored = SpikeDetector.from_state(state)
    values[2500] = 0.7
    scores = [restored.update(1.7e9 + i * 300, v).score
              for i, v in enumerate(values[2000:], start=2000)]
    assert max(scores) < 0.5
    assert restored.ground.visited == ALL
