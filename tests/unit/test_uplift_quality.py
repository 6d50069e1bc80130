"""The Qini curve, its coefficient and the Qini against a known truth, on cases small
enough to compute by hand."""

import numpy as np
import pytest

from rapport.next_action.uplift_quality import qini_against_truth, qini_coefficient, qini_curve


def test_the_qini_curve_scales_the_controls_to_the_treated_count():
    # best first: treated bought, control did not, treated did not, control bought
    fractions, gains = qini_curve([4, 3, 2, 1], [1, 0, 1, 0], [1, 0, 0, 1])
    assert fractions.tolist() == [0, 0.25, 0.5, 0.75, 1]
    assert gains.tolist() == [0, 1, 1, 1, 0]  # k=4: 1 - 1 x 2/2
    # the random line ends at Q(n) = 0: the area is the trapezoids' 0.125 + 0.25 + 0.25 + 0.125
    assert qini_coefficient([4, 3, 2, 1], [1, 0, 1, 0], [1, 0, 0, 1]) == pytest.approx(0.75)


def test_unequal_arms_scale_the_controls():
    _, gains = qini_curve([3, 2, 1], [1, 1, 0], [1, 1, 1])
    assert gains.tolist() == [0, 1, 2, 0]  # k=3: 2 - 1 x 2/1


def test_a_constant_score_is_the_random_line_whatever_the_input_order():
    for order in ([1, 0, 1, 0], [0, 1, 1, 0]):
        y = [1, 0, 0, 1] if order[0] else [0, 1, 0, 1]
        _, gains = qini_curve([5, 5, 5, 5], order, y)
        assert np.allclose(gains, 0)
        assert qini_coefficient([5, 5, 5, 5], order, y) == pytest.approx(0)
    assert qini_against_truth([1, 1, 1, 1], [3, 1, 0, -2]) == pytest.approx(0)


def test_against_the_truth_the_oracle_is_one_and_backwards_is_minus_one():
    u = [3.0, 1.0, 0.0, -2.0]
    assert qini_against_truth(u, u) == pytest.approx(1)
    assert qini_against_truth([-v for v in u], u) == pytest.approx(-1)
    # swapping the top two: areas above the random line 1.5 (model) and 2.0 (oracle)
    assert qini_against_truth([2, 3, 1, 0], u) == pytest.approx(0.75)
    assert np.isnan(qini_against_truth([1, 2, 3], [2, 2, 2]))
