"""The read-side BG/NBD and Gamma-Gamma against published values, the textbook forms, an
independent quadrature, and their ranges for any input."""

import itertools
import math

import numpy as np
import pytest
from hypothesis import assume, given, settings
from hypothesis import strategies as st
from scipy.integrate import quad
from scipy.special import beta as beta_fn
from scipy.special import hyp2f1

from rapport.shared.scores.bgnbd import (
    BgNbdParams,
    GammaGammaParams,
    expected_order_value,
    expected_purchases,
    p_alive,
    p_no_purchase,
)

CDNOW = BgNbdParams(r=0.243, alpha=4.414, a=0.793, b=2.426)


def test_the_published_worked_example():
    # Fader, Hardie & Lee (2005), section 5: x=2, t_x=30.43, T=38.86 -> 1.226 in 39 weeks.
    assert round(expected_purchases(2, 30.43, 38.86, 39, CDNOW), 3) == 1.226


def test_a_new_customer_reads_the_population_forecast():
    # FHL (2005) eq. 8 at x=0: P(X(t)=0) = (alpha/(alpha+t))^r for one just arrived.
    for t in (1.0, 13.0, 39.0, 520.0):
        assert p_no_purchase(0, 0, 0, t, CDNOW) == pytest.approx(
            (CDNOW.alpha / (CDNOW.alpha + t)) ** CDNOW.r, rel=1e-12)


# The textbook form's values (as scoring pinned them) for ordinary customers.
PINNED = [
    ((0, 0, 10, 13), (1.0, 0.19522819723746168)),
    ((1, 1.5, 10, 13), (0.5027037465898095, 0.48188607777118153)),
    ((5, 10, 52, 13), (0.006293776029176381, 0.007126972838647194)),
    ((20, 70, 78, 52), (0.7737309774429719, 8.18219060871496)),
    ((50, 100, 104, 13), (0.9074817414990725, 5.232993739547435)),
]


@pytest.mark.parametrize(("args", "expected"), PINNED)
def test_pinned_textbook_values(args, expected):
    assert p_alive(*args[:3], CDNOW) == pytest.approx(expected[0], rel=1e-9)
    assert expected_purchases(*args, CDNOW) == pytest.approx(expected[1], rel=1e-9)


@np.errstate(all="ignore")  # 0 x inf: the caller skips such cases
def textbook(x, t_x, big_t, h, p):
    """P(alive) and FHL (2005) eq. 10 as printed."""
    r, alpha, a, b = p.r, p.alpha, p.a, p.b
    odds = a / (b + x - 1) * ((alpha + big_t) / (alpha + t_x)) ** (r + x) if x > 0 else 0.0
    z = h / (alpha + big_t + h)
    num = (a + b + x - 1) / (a - 1) * (1 - ((alpha + big_t) / (alpha + big_t + h)) ** (r + x)
                                       * hyp2f1(r + x, b + x, a + b + x - 1, z))
    return 1 / (1 + odds), num / (1 + odds)


def by_quadrature(x, t_x, big_t, h, p):
    """E[purchases | data] = P(alive) E[(1 - (1 + p h/(alpha+T))^-(r+x)) / p], the
    expectation over p ~ Beta(a, b+x) by numerical integration: no 2F1, no (a-1)."""
    c = h / (p.alpha + big_t)
    n = p.r + x

    def g(q):
        return -math.expm1(-n * math.log1p(q * c)) / q if q > 0 else n * c

    integral, _ = quad(g, 0, 1, weight="alg", wvar=(p.a - 1, p.b + x - 1), epsabs=0,
                       epsrel=1e-11, limit=200)
    return p_alive(x, t_x, big_t, p) * integral / beta_fn(p.a, p.b + x)


params = st.builds(BgNbdParams, *(st.floats(1e-3, 1e3) for _ in range(4)))
moderate = st.builds(BgNbdParams, st.floats(0.05, 5), st.floats(0.5, 50), st.floats(0.2, 5),
                     st.floats(0.2, 10))


@settings(max_examples=300, deadline=None)
@given(x=st.integers(0, 200), big_t=st.floats(0.01, 500), share=st.floats(0, 1),
       h=st.floats(0.1, 200), p=moderate)
def test_equals_the_textbook_form_wherever_that_is_finite(x, big_t, share, h, p):
    assume(abs(p.a - 1) > 1e-2)  # the printed form loses digits to 1/(a-1) near a = 1
    try:
        ref_alive, ref_expected = textbook(x, big_t * share, big_t, h, p)
    except (OverflowError, ZeroDivisionError):
        return
    assume(math.isfinite(ref_alive) and math.isfinite(ref_expected) and ref_expected > 1e-12)
    assert p_alive(x, big_t * share, big_t, p) == pytest.approx(ref_alive, rel=1e-9, abs=1e-300)
    assert expected_purchases(x, big_t * share, big_t, h, p) == pytest.approx(ref_expected,
                                                                             rel=1e-7)


@settings(max_examples=150, deadline=None)
@given(x=st.integers(0, 200), big_t=st.floats(0.01, 500), share=st.floats(0, 1),
       h=st.floats(0.1, 200), p=moderate)
def test_equals_an_independent_quadrature(x, big_t, share, h, p):
    ref = by_quadrature(x, big_t * share, big_t, h, p)
    assume(ref > 1e-200)
    assert expected_purchases(x, big_t * share, big_t, h, p) == pytest.approx(ref, rel=1e-6)


@pytest.mark.parametrize("a", [1.0, 1 - 1e-5, 1 + 1e-5, 1 - 1e-4, 1 + 1e-4, 0.999, 1.001])
def test_a_at_or_near_one_is_the_limit_not_a_division_by_zero(a):
    p = BgNbdParams(r=0.243, alpha=4.414, a=a, b=2.426)
    for args in [(0, 0, 10, 13), (2, 30.43, 38.86, 39), (50, 100, 104, 13)]:
        assert expected_purchases(*args, p) == pytest.approx(by_quadrature(*args, p), rel=1e-7)


@pytest.mark.parametrize("a, b", [(0.5, 0.5), (0.3, 0.7), (0.5, 0.5 + 1e-5), (0.9999, 1e-4),
                                  (1 - 3e-5, 3e-5), (1.0, 1e-9)])
def test_a_plus_b_of_one_without_repeat_purchases_is_the_limit_not_a_pole(a, b):
    """With x = 0 and a + b = 1 the third parameter of 2F1 is 0, a pole its factor cancels
    (hypothesis found a = b = 0.5 dividing by zero, 2026-12-04)."""
    p = BgNbdParams(r=0.7, alpha=2.0, a=a, b=b)
    for args in [(0, 0, 3.0, 5.0), (0, 0, 50.0, 13.0), (0, 0, 0.5, 200.0)]:
        assert expected_purchases(*args, p) == pytest.approx(by_quadrature(*args, p), rel=1e-7)


huge = dict(x=st.integers(0, 10**6), big_t=st.floats(0, 1e4), share=st.floats(0, 1),
            h=st.floats(0, 1e4), p=params)


@settings(max_examples=1000, deadline=None)
@given(**huge)
def test_every_value_is_finite_and_in_range_for_extreme_inputs(x, big_t, share, h, p):
    t_x = big_t * share
    alive = p_alive(x, t_x, big_t, p)
    expected = expected_purchases(x, t_x, big_t, h, p)
    silent = p_no_purchase(x, t_x, big_t, h, p)
    assert math.isfinite(alive) and 0.0 <= alive <= 1.0
    assert math.isfinite(silent) and 1.0 - alive - 1e-12 <= silent <= 1.0
    # Never more than the same customer without dropout would buy.
    assert math.isfinite(expected)
    assert 0.0 <= expected <= alive * (p.r + x) / (p.alpha + big_t) * h * (1 + 1e-12) + 1e-300


@settings(max_examples=300, deadline=None)
@given(x=st.integers(0, 10**6), big_t=st.floats(0, 1e4), p=params)
def test_without_repeat_purchases_a_customer_is_alive(x, big_t, p):
    assert p_alive(0, 0, big_t, p) == 1.0
    # and one who bought just now is at least as alive as one silent since
    if x > 0:
        assert p_alive(x, big_t, big_t, p) >= p_alive(x, big_t / 2, big_t, p)


@settings(max_examples=500, deadline=None)
@given(**huge, more=st.floats(0, 1e4))
def test_longer_horizons_mean_more_purchases_and_less_chance_of_none(x, big_t, share, h, p,
                                                                     more):
    t_x = big_t * share
    assert p_no_purchase(x, t_x, big_t, h + more, p) <= p_no_purchase(x, t_x, big_t, h, p) + 1e-15
    short, long = (expected_purchases(x, t_x, big_t, v, p) for v in (h, h + more))
    assert long >= short * (1 - 1e-9)
    assert p_no_purchase(x, t_x, big_t, 0, p) == 1.0


def test_an_endless_horizon_leaves_only_the_chance_of_having_left():
    alive = p_alive(2, 30.43, 38.86, CDNOW)
    assert p_no_purchase(2, 30.43, 38.86, 1e7, CDNOW) == pytest.approx(1 - alive, rel=1e-3)


def test_corrupt_inputs_score_as_their_nearest_meaning():
    assert p_alive(-3, -1.0, float("nan"), CDNOW) == 1.0
    for value in (expected_purchases(5, float("inf"), float("inf"), float("inf"), CDNOW),
                  p_no_purchase(5, float("nan"), float("inf"), float("nan"), CDNOW)):
        assert math.isfinite(value)


@pytest.mark.parametrize("bad", [0.0, -1.0, float("nan"), float("inf")])
def test_params_must_be_finite_and_positive(bad):
    with pytest.raises(ValueError):
        BgNbdParams(r=bad)
    with pytest.raises(ValueError):
        GammaGammaParams(gamma=bad)


def test_gamma_gamma_needs_a_finite_mean():
    with pytest.raises(ValueError, match="q must exceed 1"):
        GammaGammaParams(q=1.0)


def test_expected_order_value_shrinks_a_customer_towards_the_population():
    gg = GammaGammaParams(p=6.25, q=3.74, gamma=15.44)
    population = 6.25 * 15.44 / 2.74
    assert gg.mean_value() == pytest.approx(population)
    assert expected_order_value(0, 0.0, gg) == pytest.approx(population)
    # FHL "RFM and CLV" eq. 5 by hand: one repeat at $100.
    assert expected_order_value(1, 100.0, gg) == pytest.approx(6.25 * 115.44 / 8.99)
    # More purchases, more weight on the customer's own mean.
    own = [expected_order_value(x, 100.0, gg) for x in (1, 10, 100, 10_000)]
    assert all(population < a < b < 100.0 for a, b in itertools.pairwise(own))
    assert own[-1] == pytest.approx(100.0, rel=1e-3)
    assert expected_order_value(3, float("nan"), gg) == pytest.approx(population)


@settings(max_examples=300, deadline=None)
@given(x=st.integers(0, 10**6), m=st.floats(0, 1e15),
       gg=st.builds(GammaGammaParams, st.floats(1e-3, 1e3), st.floats(1.001, 1e3),
                    st.floats(1e-3, 1e3)))
def test_expected_order_value_is_finite_and_between_the_two_means(x, m, gg):
    value = expected_order_value(x, m, gg)
    low, high = sorted((gg.mean_value(), min(m, 1e12) if x > 0 else gg.mean_value()))
    assert math.isfinite(value) and low * (1 - 1e-9) <= value <= high * (1 + 1e-9)
