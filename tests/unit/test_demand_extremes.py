"""New territory (:mod:`rapport.profile.demand.extremes`): a point past the extremes seen
by more than a share of their distance and some noise, and only once they are learnt."""

from __future__ import annotations

import random

from hypothesis import given
from hypothesis import strategies as st

from rapport.profile.demand.detector import SpikeDetector
from rapport.profile.demand.extremes import Extremes


def test_past_the_extremes_by_more_than_the_margin_only():
    e = Extremes()
    for v in [10.0, 20.0, 15.0]:
        assert not e.update(v, tolerance=0.1, after=3)
    # range 10: margin 0.1 x 10 + 2 = 3
    assert not e.update(22.9, tolerance=0.1, after=3, noise=2.0)
    assert e.high == 22.9
    # the new high moved the range to 12.9: margin 3.29
    assert not e.update(26.0, tolerance=0.1, after=3, noise=2.0)
    # and to 16: margin 3.6
    assert not e.update(29.5, tolerance=0.1, after=3, noise=2.0)
    assert e.update(33.5, tolerance=0.1, after=3, noise=2.0)
    assert e.update(5.0, tolerance=0.1, after=3, noise=2.0)
    assert (e.low, e.high, e.seen) == (5.0, 33.5, 8)


def test_nothing_is_new_before_the_extremes_are_learnt():
    e = Extremes()
    assert not any(e.update(v, tolerance=0.05, after=5) for v in [1.0, 2.0, 100.0, -50.0, 3.0])
    assert e.update(300.0, tolerance=0.05, after=5)


def test_a_flat_series_has_no_range_to_leave():
    e = Extremes()
    assert not any(e.update(7.0, tolerance=0.05, after=2) for _ in range(10))


@given(st.lists(st.floats(-1e6, 1e6), min_size=1, max_size=60),
       st.floats(0, 1), st.floats(0, 100))
def test_new_territory_is_exactly_past_the_widened_extremes(values, tolerance, noise):
    e = Extremes()
    for i, v in enumerate(values):
        low, high, seen = e.low, e.high, e.seen
        outside = e.update(v, tolerance, after=2, noise=noise)
        margin = tolerance * (high - low) + noise
        assert outside == (seen >= 2 and high > low
                           and (v > high + margin or v < low - margin))
        assert e.low <= v <= e.high and e.low == min(values[:i + 1])
        assert e.high == max(values[:i + 1])


def test_extremes_restore_and_an_older_state_learns_them_again():
    e = Extremes()
    for v in [1.0, 5.0, 3.0]:
        e.update(v, 0.05, 2)
    assert Extremes.from_state(e.to_state()) == e
    assert Extremes.from_state(None) == Extremes()


def test_a_detector_restored_from_a_state_without_extremes_raises_no_alarm():
    """An older version's state has no extremes: the restored detector must not take its
    next points for new territory (its extremes would be a single point wide)."""
    rng = random.Random(4)
    d = SpikeDetector(step_s=300)
    t = 1_700_000_000
    for i in range(2000):
        d.update(t + i * 300, 50 + rng.gauss(0, 5))
    state = d.to_state()
    del state["extremes"]
    restored = SpikeDetector.from_state(state)
    scores = [restored.update(t + (2000 + i) * 300, 50 + rng.gauss(0, 5)).score
              for i in range(1000)]
    assert max(scores) < 0.5
    assert restored.extremes.seen == 1000
