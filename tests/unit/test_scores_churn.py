"""Churn risk: bounded, never lowered by a signal, the base itself without signals."""

import math

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from rapport.shared.scores.churn import ChurnSignals, ChurnWeights, churn_risk, frequency_drop

probabilities = st.floats(0, 1)
counts = st.integers(0, 10**6)
signals = st.builds(ChurnSignals, counts, counts, counts, st.floats(0, 1))


@settings(max_examples=300)
@given(base=probabilities)
def test_no_signal_returns_the_base_unchanged(base):
    risk, reasons = churn_risk(base, ChurnSignals())
    assert risk == base
    assert len(reasons) == 1 and f"{base:.2f}" in reasons[0]


@settings(max_examples=500)
@given(base=probabilities, s=signals)
def test_risk_is_a_probability_and_never_below_the_base(base, s):
    risk, _ = churn_risk(base, s)
    assert 0.0 <= risk <= 1.0 and risk >= base


@settings(max_examples=1000)
@given(base=probabilities, s=signals, which=st.sampled_from(
    ["complaints", "refunds", "unresolved_contacts", "frequency_drop"]),
    more=st.integers(1, 1000))
def test_more_of_any_signal_never_lowers_the_risk(base, s, which, more):
    value = getattr(s, which)
    bigger = min(1.0, value + more / 1000) if which == "frequency_drop" else value + more
    raised = ChurnSignals(**{**vars(s), which: bigger})
    assert churn_risk(base, raised)[0] >= churn_risk(base, s)[0]


def test_each_signal_raises_an_uncertain_risk_by_its_weight():
    base = 0.3
    odds = base / (1 - base)
    w = ChurnWeights()
    for signal, shift in ((ChurnSignals(complaints=2), w.complaints * math.log(3)),
                          (ChurnSignals(refunds=1), w.refunds * math.log(2)),
                          (ChurnSignals(unresolved_contacts=1), w.unresolved_contacts
                           * math.log(2)),
                          (ChurnSignals(frequency_drop=0.5), w.frequency_drop * 0.5)):
        risk, _ = churn_risk(base, signal)
        assert risk == pytest.approx(odds * math.exp(shift) / (1 + odds * math.exp(shift)))
        assert risk > base


def test_reasons_read_plainly_and_strongest_first():
    risk, reasons = churn_risk(0.83, ChurnSignals(complaints=2, refunds=1,
                                                  frequency_drop=0.75))
    assert reasons == ["no purchase expected in the next 90 days (p=0.83)",
                       "2 complaints in 90 days",
                       "buying 75% less often than usual in the last 90 days",
                       "1 refund in 90 days"]
    assert 0.83 < risk < 1
    _, reasons = churn_risk(0.2, ChurnSignals(unresolved_contacts=1), horizon_days=273)
    assert reasons == ["a purchase is likely in the next 273 days (p of none=0.20)",
                       "1 unresolved service contact in 90 days"]


def test_certainties_and_corrupt_inputs_stay_in_bounds():
    loud = ChurnSignals(complaints=10**9, refunds=10**9, unresolved_contacts=10**9,
                        frequency_drop=1.0)
    assert churn_risk(1.0, loud)[0] == 1.0
    assert churn_risk(0.0, loud)[0] == 0.0
    assert churn_risk(float("nan"), ChurnSignals())[0] == 0.5
    assert churn_risk(0.4, ChurnSignals(complaints=-5, frequency_drop=float("nan")))[0] == 0.4
    assert churn_risk(1.7, ChurnSignals())[0] == 1.0


def test_weights_must_not_lower_risk():
    with pytest.raises(ValueError):
        ChurnWeights(complaints=-0.1)
    with pytest.raises(ValueError):
        ChurnWeights(refunds=float("nan"))
    assert churn_risk(0.3, ChurnSignals(complaints=3), ChurnWeights(complaints=0))[0] == 0.3


def test_frequency_drop_compares_with_the_customers_own_rate():
    # 26 purchase days in 52 weeks: ~6.4 expected in 90 days.
    assert frequency_drop(6, 26, 52) == pytest.approx(1 - 6 / (26 / 52 * 90 / 7))
    assert frequency_drop(0, 26, 52) == 1.0
    assert frequency_drop(20, 26, 52) == 0.0  # buying more is no drop
    assert frequency_drop(0, 2, 52) == 0.0  # 0.5 expected: a quiet quarter is ordinary
    assert frequency_drop(0, 10, 52) == 0.0  # 2.5 expected: not yet a regular buyer
    assert frequency_drop(0, 10, 52, min_expected=1.0) == 1.0
    assert frequency_drop(0, 5, 0) == 0.0
