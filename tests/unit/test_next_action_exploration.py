"""Exploration's probabilities are exact: they are what the choices do, over all draws."""

import itertools

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from rapport.next_action.exploration import choose, probabilities


@settings(deadline=None, max_examples=40)
@given(st.integers(0, 12), st.integers(1, 5), st.sampled_from([0.0, 0.05, 0.3, 1.0]))
def test_probabilities_are_the_share_of_draws_that_make_each(n, limit, epsilon):
    # u and r on a fine grid: the exact shares, not a sample.
    grid = [(i + 0.5) / 40 for i in range(40)]
    counts = [0] * n
    for u, r in itertools.product(grid, [(j + 0.5) / 420 for j in range(420)]):
        for i in choose(n, limit, epsilon, u, r).made:
            counts[i] += 1
    total = len(grid) * 420
    probs = probabilities(n, limit, epsilon)
    for i in range(n):
        assert counts[i] / total == pytest.approx(probs[i], abs=1 / 40 + 1e-9)
    assert sum(probs) == pytest.approx(min(n, limit))


def test_the_best_are_made_and_the_last_slot_explores():
    assert choose(5, 2, 0.1, u=0.5, r=0.9).made == (0, 1)
    c = choose(5, 2, 0.1, u=0.05, r=0.99)
    assert c.made == (0, 4) and c.explored
    assert c.probabilities == pytest.approx((1.0, 0.9 + 0.025, 0.025, 0.025, 0.025))
    assert choose(2, 3, 0.5, u=0.0, r=0.0).probabilities == (1.0, 1.0)
    assert choose(0, 3, 0.5, 0.0, 0.0).made == ()
    with pytest.raises(ValueError):
        choose(3, 1, 1.5, 0.0, 0.0)
