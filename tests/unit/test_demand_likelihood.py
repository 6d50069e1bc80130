"""The surprises' long distribution (:mod:`rapport.profile.demand.likelihood`): the plain
mean and variance of what was seen until there is a window's worth, then a window."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from rapport.profile.demand.detector import DetectorConfig
from rapport.profile.demand.likelihood import Likelihood

CONFIG = DetectorConfig()


@given(st.lists(st.floats(0.0, 1.0), min_size=1, max_size=150))
def test_until_a_window_is_seen_it_is_the_plain_mean_and_variance(surprises):
    lk = Likelihood(count=0)
    for s in surprises:
        lk.update(s, warm=True, c=CONFIG)
    assert lk.long_mean == pytest.approx(np.mean(surprises), abs=1e-9)
    assert lk.long_var == pytest.approx(np.var(surprises), abs=1e-9)


def test_after_a_window_old_surprises_fade():
    lk = Likelihood(count=0)
    for _ in range(2000):
        lk.update(0.9, warm=True, c=CONFIG)
    for _ in range(int(3 / CONFIG.long_alpha)):      # three windows of calm
        lk.update(0.1, warm=True, c=CONFIG)
    assert lk.long_mean == pytest.approx(0.1 + 0.8 * (1 - CONFIG.long_alpha) ** 600, rel=1e-6)


def test_a_young_series_surprise_scores_where_a_prior_variance_hid_it():
    """150 calm points, then one full surprise: scored as a detection by the learnt
    distribution; the old prior (variance 1, what an older state restores as) hid it."""
    young, prior = Likelihood(count=0), Likelihood()
    for lk in (young, prior):
        for i in range(150):
            lk.update(0.05 + 0.02 * (i % 3), warm=False, c=CONFIG)
    assert young.update(1.0, warm=True, c=CONFIG) > 0.9
    assert prior.update(1.0, warm=True, c=CONFIG) < 0.2


def test_an_older_state_restores_as_a_full_window():
    state = Likelihood(count=0).to_state()
    del state["count"]
    restored = Likelihood.from_state(state)
    before = restored.long_mean
    restored.update(1.0, warm=True, c=CONFIG)
    assert restored.long_mean == pytest.approx(before + CONFIG.long_alpha * (1.0 - before))
