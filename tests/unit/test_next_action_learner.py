"""The probit learner (AdPredictor) is calibrated, its uncertainty is honest and shrinks
with data, and it survives storage; the Beta baseline counts."""

import numpy as np
import pytest
from scipy.special import ndtr

from rapport.next_action.features import FEATURES, INDEX, base_features
from rapport.next_action.learner import BetaModel, ProbitModel


def customer(rng: np.random.Generator, channel: str = "web") -> np.ndarray:
    x = base_features(channel)
    for name in ("rfm_r", "churn_risk", "discount_share", "email_open_rate"):
        x[INDEX[name]] = rng.random()
    x[INDEX["known"]] = 1.0
    return x


def truth(x: np.ndarray, offer: int) -> float:
    """A known probit truth: offers differ in base rate and in what drives them."""
    w = np.zeros(len(FEATURES))
    w[0] = (-1.9, -1.2, -1.5)[offer]
    w[INDEX["rfm_r"]] = (0.4, -0.5, 0.0)[offer]
    w[INDEX["discount_share"]] = (1.2, 0.0, 0.3)[offer]
    w[INDEX["email_open_rate"]] = 0.5
    w[INDEX["channel_email"]] = 0.3
    return float(ndtr(w @ x))


def test_predicted_propensities_match_a_known_truth_after_enough_outcomes():
    rng = np.random.default_rng(1)
    model = ProbitModel()
    for _ in range(20000):
        x, o = customer(rng, str(rng.choice(["web", "email"]))), int(rng.integers(3))
        model.update(f"o{o}", x, bool(rng.random() < truth(x, o)))
    errors = []
    for _ in range(300):
        x, o = customer(rng, str(rng.choice(["web", "email"]))), int(rng.integers(3))
        errors.append(model.predict([f"o{o}"], x)[0][0] - truth(x, o))
    errors = np.abs(errors)
    # Rates of 2% to 45%: within 3 points on average after about 6,700 outcomes per
    # offer (diagonal ADF converges slowly on always-on, collinear features: the
    # intercepts, "known" and the channel).
    assert errors.mean() < 0.03, errors.mean()
    assert np.quantile(errors, 0.95) < 0.12, np.quantile(errors, 0.95)
    assert model.version == 20000


def test_the_uncertainty_shrinks_with_data_and_is_the_exact_posterior_spread():
    rng = np.random.default_rng(2)
    model, x = ProbitModel(), base_features("web")
    sds, score_vars = [model.predict(["a"], x)[1][0]], [model._score(["a"], x)[1][0]]
    for n in (20, 200, 2000):
        while model.version < n:
            model.update("a", x, bool(rng.random() < 0.05))
        sds.append(model.predict(["a"], x)[1][0])
        score_vars.append(model._score(["a"], x)[1][0])
    # The score's variance falls with every outcome; the propensity's sd (which also
    # scales with the level, and 20 rejections lower it) ends far below the prior's.
    assert score_vars == sorted(score_vars, reverse=True)
    assert sds[-1] < sds[0] / 8 and sds[-1] < sds[-2] < sds[0]
    # The sd is that of Phi(w.x / beta) under the posterior (Monte Carlo agrees).
    fresh, y = ProbitModel(), customer(rng)
    mean, var = fresh._score(["a"], y)
    draws = ndtr(rng.normal(mean[0], np.sqrt(var[0]), 400_000))
    p, sd = fresh.predict(["a"], y)
    assert p[0] == pytest.approx(draws.mean(), abs=2e-3)
    assert sd[0] == pytest.approx(draws.std(), rel=0.02)


@pytest.mark.parametrize("rate", [0.05, 0.2])
def test_fifty_acceptances_give_a_mature_estimate(rate):
    """About 50 positives pin an offer's rate within 2 points. The sd is then under
    0.4x the rate, and above the binomial sd (about twice it: a diagonal posterior
    forgets that the intercepts and channel weights, all updated together, are
    correlated, so it stays cautious rather than overconfident)."""
    rng = np.random.default_rng(3)
    model, x = ProbitModel(), base_features("email")
    positives = 0
    while positives < 50:
        took = bool(rng.random() < rate)
        positives += took
        model.update("a", x, took)
    p, sd = model.predict(["a"], x)
    assert abs(p[0] - rate) < 0.02
    binomial = (rate * (1 - rate) / model.version) ** 0.5
    assert binomial < sd[0] < 0.4 * rate


def test_unknown_offers_start_from_the_prior_of_about_five_percent():
    model = ProbitModel()
    x = base_features("mobile")
    p, sd = model.predict(["never-seen"], x)
    assert p[0] == pytest.approx(0.05, abs=1e-9) and sd[0] > 0.05
    rng = np.random.default_rng(4)
    for _ in range(300):
        model.update("known", x, bool(rng.random() < 0.3))
    p_new, _ = model.predict(["never-seen", "known"], x)
    assert p_new[1] > 0.2
    # The shared weights carry what every offer taught to an offer never seen.
    assert 0.1 < p_new[0] < p_new[1]


def test_the_shared_weights_transfer_a_driver_to_a_new_offer():
    rng = np.random.default_rng(5)
    model = ProbitModel()
    for _ in range(4000):
        x = customer(rng)
        o = f"o{int(rng.integers(5))}"
        model.update(o, x, bool(rng.random() < ndtr(-2 + 2.5 * x[INDEX["discount_share"]])))
    low, high = customer(rng), customer(rng)
    low[INDEX["discount_share"]], high[INDEX["discount_share"]] = 0.0, 1.0
    assert model.predict(["new"], high)[0][0] > 3 * model.predict(["new"], low)[0][0]


def test_optimism_and_thompson_samples_stay_probabilities():
    rng = np.random.default_rng(6)
    model, x = ProbitModel(), customer(rng)
    ids = ["a", "b", "c"]
    p, sd = model.predict(ids, x)
    up = model.upper(ids, x, 2.0)
    assert np.all(up >= p) and np.all(up <= 1) and np.allclose(up, np.minimum(p + 2 * sd, 1))
    draws = np.array([model.sample(ids, x, rng) for _ in range(4000)])
    assert draws.min() >= 0 and draws.max() <= 1
    assert draws.mean(axis=0) == pytest.approx(p, abs=0.01)


def test_storage_round_trip_and_an_incompatible_model_is_ignored():
    rng = np.random.default_rng(7)
    model = ProbitModel(beta=0.8)
    for _ in range(200):
        model.update(f"o{int(rng.integers(4))}", customer(rng), bool(rng.random() < 0.2))
    fields = model.to_fields()
    assert set(fields) == {"meta", "shared", "offer:o0", "offer:o1", "offer:o2", "offer:o3"}
    as_redis = {k.encode(): v for k, v in fields.items()}
    back = ProbitModel.from_fields(as_redis)
    x = customer(rng)
    ids = ["o0", "o1", "o2", "o3", "unknown"]
    assert np.array_equal(back.predict(ids, x)[0], model.predict(ids, x)[0])
    assert back.version == 200 and back.beta == 0.8
    back.update("o1", x, True)  # it keeps learning
    assert back.predict(["o1"], x)[0][0] > model.predict(["o1"], x)[0][0]

    fresh = ProbitModel().predict(ids, x)[0]
    other = dict(fields, meta=fields["meta"].replace(b'"intercept"', b'"bias"'))
    for stored in ({}, other, dict(fields, meta=b"not json"), dict(fields, shared=b"\0" * 8)):
        ignored = ProbitModel.from_fields(stored)
        assert ignored.version == 0 and np.array_equal(ignored.predict(ids, x)[0], fresh)


def test_the_beta_baseline_shrinks_toward_five_percent():
    b = BetaModel()
    assert b.mean(["a"])[0] == pytest.approx(0.05)
    for took in [True] * 10 + [False] * 10:
        b.update("a", took)
    assert b.mean(["a", "b"]) == pytest.approx([11 / 40, 0.05])
    draws = b.sample(["a"] * 5000, np.random.default_rng(0))
    assert draws.mean() == pytest.approx(11 / 40, abs=0.01)
