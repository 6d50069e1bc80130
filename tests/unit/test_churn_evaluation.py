"""The churn risk on CDNOW: calibrated to 1997-09-30, who buys nothing in the 39 weeks after."""

from pathlib import Path

import numpy as np
import pytest

from rapport.scoring.evaluate import auc, evaluate_churn_cdnow, reliability
from rapport.shared import cli

CDNOW = Path(__file__).resolve().parents[1] / "data" / "cdnow_sample.txt"


@pytest.fixture(scope="module")
def evaluation():
    return evaluate_churn_cdnow(CDNOW)


def test_churn_risk_ranks_who_stops_buying(evaluation):
    assert evaluation.customers == 2357
    assert evaluation.auc_churn_risk >= 0.75
    # the comparisons: expected purchases rank as well; P(alive) alone ranks backwards
    # (a one-time buyer is "alive" for sure in BG/NBD, yet the likeliest to buy nothing)
    assert evaluation.auc_minus_expected_purchases == pytest.approx(0.77, abs=0.03)
    assert evaluation.auc_one_minus_p_alive == pytest.approx(0.31, abs=0.05)


def test_churn_risk_is_better_than_the_base_rate(evaluation):
    rate = evaluation.churned / evaluation.customers
    assert evaluation.brier < rate * (1 - rate)  # the Brier score of predicting the rate


def test_the_reliability_table_covers_everyone(evaluation):
    bins = evaluation.reliability
    assert len(bins) == 10 and sum(b.count for b in bins) == evaluation.customers
    weighted = sum(b.observed_rate * b.count for b in bins if b.count)
    assert weighted == pytest.approx(evaluation.churned)
    for b in bins:
        assert b.count == 0 or b.low <= b.mean_predicted <= b.high


def test_auc_by_ranks_counts_ties_half():
    y = np.array([True, False, True, False])
    assert auc(np.array([0.9, 0.1, 0.8, 0.2]), y) == 1.0
    assert auc(np.array([0.1, 0.9, 0.2, 0.8]), y) == 0.0
    assert auc(np.array([0.5, 0.5, 0.5, 0.5]), y) == 0.5
    # positives 0.9, 0.1 against negatives 0.9, 0.2: a tie (.5), a win, two losses, of 4
    assert auc(np.array([0.9, 0.9, 0.1, 0.2]), y) == 0.375
    with pytest.raises(ValueError):
        auc(np.array([0.1]), np.array([True]))


def test_reliability_bins_by_prediction():
    bins = reliability(np.array([0.05, 0.05, 0.95, 1.0]), np.array([0.0, 1.0, 1.0, 1.0]))
    assert (bins[0].count, bins[0].observed_rate) == (2, 0.5)
    assert (bins[9].count, bins[9].mean_predicted) == (2, 0.975)
    assert bins[5].count == 0 and bins[5].observed_rate is None


def test_the_command_prints_the_figures(capsys):
    assert cli.main(["eval-churn", "--data", str(CDNOW)]) == 0
    out = capsys.readouterr().out
    assert "ROC AUC, churn risk" in out and "Reliability" in out and "r=0.2426" in out
    assert cli.main(["eval-churn", "--data", str(CDNOW.with_name("missing.txt"))]) == 2
