"""The fits reproduce the published CDNOW parameters from raw transactions, recover the
parameters of populations drawn from the models, and refuse populations they cannot fit."""

import json
from datetime import UTC, date, datetime
from pathlib import Path

import numpy as np
import pytest
from scipy.optimize import approx_fprime

from rapport.scoring import fitting
from rapport.scoring.evaluate import load_cdnow, synthetic_histories
from rapport.scoring.fitting import (
    MIN_REPEAT_BUYERS,
    FitRejected,
    Histories,
    fit_bgnbd,
    fit_clv,
    fit_gamma_gamma,
)
from rapport.shared.purchases import PurchaseHistory
from rapport.shared.scores.bgnbd import BgNbdParams, GammaGammaParams

CDNOW = Path(__file__).resolve().parents[1] / "data" / "cdnow_sample.txt"
# Fader, Hardie & Lee (2005): BG/NBD, and "RFM and CLV" for Gamma-Gamma.
PUBLISHED_BGNBD = {"r": 0.243, "alpha": 4.414, "a": 0.793, "b": 2.426}
PUBLISHED_GG = {"p": 6.25, "q": 3.74, "gamma": 15.44}


@pytest.fixture(scope="module")
def cdnow() -> Histories:
    histories = load_cdnow(CDNOW).values()
    ends = [datetime(1997, 9, 30, 23, 59, 59, tzinfo=UTC), datetime(1997, 10, 1, tzinfo=UTC)]
    late, midnight = ([h.summary(at) for h in histories] for at in ends)
    assert late == midnight
    return Histories.from_summaries(midnight)


@pytest.fixture(scope="module")
def cdnow_fit(cdnow):
    return fit_clv(cdnow)


def test_reproduces_the_published_cdnow_fits(cdnow, cdnow_fit):
    assert cdnow_fit.customers == len(cdnow) == 2357
    assert cdnow_fit.repeat_buyers == 946
    for name, value in PUBLISHED_BGNBD.items():
        assert getattr(cdnow_fit.bgnbd, name) == pytest.approx(value, rel=0.01), name
    for name, value in PUBLISHED_GG.items():
        assert getattr(cdnow_fit.gamma_gamma, name) == pytest.approx(value, rel=0.01), name
    # the published maximum of the BG/NBD log-likelihood
    assert cdnow_fit.diagnostics["bgnbd"]["log_likelihood"] == pytest.approx(-9582.4, abs=0.1)


def test_diagnostics_are_json_and_say_what_happened(cdnow_fit):
    d = json.loads(json.dumps(cdnow_fit.diagnostics))
    for model in ("bgnbd", "gamma_gamma"):
        assert d[model]["converged"] is True and d[model]["iterations"] > 0
        assert d[model]["duration_s"] >= 0 and d[model]["message"]
    # identical rows are fitted once: fewer rows than customers
    assert d["bgnbd"]["rows"] < 2357 and d["gamma_gamma"]["rows"] <= 946


def test_a_refit_from_the_current_model_lands_on_the_same_fit(cdnow, cdnow_fit):
    again = fit_clv(cdnow, previous=cdnow_fit)
    assert again.diagnostics["warm_start"] is True
    for got, want in ((again.bgnbd, cdnow_fit.bgnbd), (again.gamma_gamma,
                                                       cdnow_fit.gamma_gamma)):
        for name, value in vars(want).items():
            assert getattr(got, name) == pytest.approx(value, rel=1e-5)
    assert again.diagnostics["bgnbd"]["iterations"] <= 2


def test_a_poor_starting_model_still_finds_the_maximum(cdnow):
    far = BgNbdParams(r=50.0, alpha=0.01, a=20.0, b=0.05)
    params, _ = fit_bgnbd(cdnow, start=far)
    assert params.r == pytest.approx(0.2426, rel=1e-3)
    assert params.b == pytest.approx(2.4259, rel=1e-3)


@pytest.mark.parametrize("seed", [1, 2])
def test_recovers_the_parameters_a_population_was_drawn_from(seed):
    # 100,000 customers seen 26 to 78 weeks: standard errors of a few percent.
    bg, gg = BgNbdParams(0.243, 4.414, 0.793, 2.426), GammaGammaParams(6.25, 3.74, 15.44)
    fit = fit_clv(synthetic_histories(bg, gg, 100_000, seed=seed, ages_weeks=(26, 78)))
    for got, want in ((fit.bgnbd, bg), (fit.gamma_gamma, gg)):
        for name, value in vars(want).items():
            assert getattr(got, name) == pytest.approx(value, rel=0.1), name


def test_other_parameters_are_recovered_too():
    bg, gg = BgNbdParams(1.5, 20.0, 2.0, 8.0), GammaGammaParams(3.0, 10.0, 200.0)
    fit = fit_clv(synthetic_histories(bg, gg, 100_000, seed=5, ages_weeks=(26, 78)))
    for got, want in ((fit.bgnbd, bg), (fit.gamma_gamma, gg)):
        for name, value in vars(want).items():
            assert getattr(got, name) == pytest.approx(value, rel=0.15), name


@pytest.mark.parametrize("make", ["bgnbd", "gamma_gamma"])
def test_the_analytic_gradients_are_the_likelihoods_own(make):
    h = synthetic_histories(BgNbdParams(), GammaGammaParams(), 3000, seed=4, whole_days=True)
    if make == "bgnbd":
        (x, t_x, big_t), w = fitting._compress(h.x, h.t_x, h.T)
        f, theta = fitting._bgnbd_objective(x, t_x, big_t, w), np.log([0.3, 5, 0.7, 2.0])
    else:
        b = h.x > 0
        (x, m), w = fitting._compress(h.x[b], h.monetary[b])
        f, theta = fitting._gamma_gamma_objective(x, m, w), np.log([5.0, 3.0, 12.0])
    numeric = approx_fprime(theta, lambda t: f(t)[0], 1e-7)
    assert f(theta)[1] == pytest.approx(numeric, rel=1e-4, abs=1e-7)


def test_weighted_rows_are_the_same_likelihood_as_every_customer(cdnow):
    (x, t_x, big_t), w = fitting._compress(cdnow.x, cdnow.t_x, cdnow.T)
    assert w.sum() == len(cdnow) and x.size < len(cdnow)
    theta = np.log([0.3, 5, 0.7, 2.0])
    once = fitting._bgnbd_objective(cdnow.x, cdnow.t_x, cdnow.T, np.ones(len(cdnow)))(theta)
    compressed = fitting._bgnbd_objective(x, t_x, big_t, w)(theta)
    assert compressed[0] == pytest.approx(once[0], rel=1e-12)
    assert compressed[1] == pytest.approx(once[1], rel=1e-9)


def test_an_empty_population_is_refused_with_its_date():
    nobody = Histories.from_summaries([PurchaseHistory().summary(datetime(1997, 10, 1,
                                                                          tzinfo=UTC))])
    assert len(nobody) == 0
    with pytest.raises(FitRejected, match="no purchases in the population"):
        fit_clv(nobody)
    one = PurchaseHistory()
    one.add(datetime(1997, 1, 2, 12, tzinfo=UTC), 10.0)
    h = Histories.from_summaries([one.summary(datetime(1997, 10, 1, tzinfo=UTC))])
    assert h.as_of() == " as of 1997-09-30"


def test_one_purchase_each_cannot_fit_spend():
    n = 500
    h = Histories(np.zeros(n), np.zeros(n), np.linspace(1, 40, n), np.zeros(n))
    with pytest.raises(FitRejected, match=f"0 repeat buyers.*at least {MIN_REPEAT_BUYERS}"):
        fit_clv(h)
    with pytest.raises(FitRejected, match="no repeat purchases"):
        fit_bgnbd(h)


def test_too_few_repeat_buyers_are_refused(cdnow):
    keep = np.flatnonzero(cdnow.x > 0)[:MIN_REPEAT_BUYERS - 1]
    few = Histories(cdnow.x[keep], cdnow.t_x[keep], cdnow.T[keep], cdnow.monetary[keep])
    with pytest.raises(FitRejected, match=f"only {MIN_REPEAT_BUYERS - 1} repeat buyers"):
        fit_gamma_gamma(few)


def test_a_population_unlike_the_model_is_refused():
    # Everyone alike and buying steadily: no heterogeneity and no dropout for the
    # Gamma and Beta mixtures to describe, so the fit runs off to the bounds.
    n = 500
    alike = Histories(np.full(n, 5.0), np.full(n, 20.0), np.full(n, 20.0), np.full(n, 30.0))
    with pytest.raises(FitRejected, match="implausible") as caught:
        fit_clv(alike)
    assert "outside [0.0001, 10000]" in caught.value.reason


def test_spend_too_wild_for_a_finite_mean_is_refused():
    rng = np.random.default_rng(0)
    n = 500
    wild = Histories(np.ones(n), np.full(n, 5.0), np.full(n, 20.0),
                     np.exp(rng.normal(3, 4, n)))
    with pytest.raises(FitRejected, match=r"q=.* <= 1: an infinite mean spend"):
        fit_gamma_gamma(wild)


def test_no_convergence_is_refused(cdnow, monkeypatch):
    monkeypatch.setattr(fitting, "_OPTIONS", {**fitting._OPTIONS, "maxiter": 2})
    with pytest.raises(FitRejected, match="did not converge"):
        fit_bgnbd(cdnow)


@pytest.mark.parametrize("bad", [
    dict(x=[1.5], t_x=[1.0], T=[2.0], monetary=[1.0]),
    dict(x=[1.0], t_x=[3.0], T=[2.0], monetary=[1.0]),
    dict(x=[1.0], t_x=[1.0], T=[float("nan")], monetary=[1.0]),
    dict(x=[1.0, 2.0], t_x=[1.0], T=[2.0], monetary=[1.0]),
])
def test_histories_refuse_what_no_summary_gives(bad):
    with pytest.raises(ValueError):
        Histories(**{k: np.array(v) for k, v in bad.items()})


def test_histories_read_summaries_as_the_summary_does(cdnow):
    one = load_cdnow(CDNOW)["00004"].summary(datetime(1997, 10, 1, tzinfo=UTC))
    h = Histories.from_summaries([one])
    assert (h.x[0], h.t_x[0], h.T[0]) == (one.frequency, one.recency_weeks, one.age_weeks)
    assert h.monetary[0] == pytest.approx(one.mean_repeat_value)
    assert str(date(1997, 9, 30)) in cdnow.as_of()
