"""The bench's per-stage freshness: quantiles of what a load added to a histogram."""

import math

from hypothesis import given
from hypothesis import strategies as st

from rapport.profile.bench_stages import per_stage, quantile, stage_ms

INF = math.inf


def test_quantiles_interpolate_within_the_bucket_of_the_rank() -> None:
    before = {0.1: 10, 1.0: 10, INF: 10}  # what came before the load is left out
    after = {0.1: 60, 1.0: 110, INF: 110}
    assert quantile(before, after, 0.5) == 0.1
    assert math.isclose(quantile(before, after, 0.99), 0.1 + 0.98 * 0.9)
    assert quantile(after, after, 0.5) is None


def test_beyond_the_last_bound_the_last_bound_is_said() -> None:
    assert quantile({}, {0.5: 1, INF: 10}, 0.99) == 0.5


@given(st.lists(st.integers(0, 50), min_size=3, max_size=3), st.floats(0.01, 0.99))
def test_a_quantile_lies_within_the_histograms_range(adds: list[int], q: float) -> None:
    bounds = [0.1, 1.0, INF]
    cumulative, total = {}, 0
    for bound, n in zip(bounds, adds, strict=True):
        total += n
        cumulative[bound] = total
    got = quantile({}, cumulative, q)
    assert (got is None) == (total == 0)
    if got is not None:
        assert 0.0 <= got <= 1.0


def test_stage_quantiles_in_ms_mark_those_at_the_largest_bound() -> None:
    before = {"fold": {0.1: 0, 30.0: 0, INF: 0}}
    after = {"fold": {0.1: 50, 30.0: 60, INF: 100}, "resolve": {0.1: 10, 30.0: 10, INF: 10}}
    got = stage_ms(before, after)
    assert got["fold"]["p50"] == 100.0 and got["fold"]["top"] == 30_000
    assert got["fold"]["p99"] == 30_000  # in the +Inf bucket: at least the largest bound
    assert per_stage(before, after) == "resolve 50 / 99 ms; fold 100 / ≥30,000 ms"
