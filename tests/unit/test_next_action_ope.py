"""Off-policy estimates recover what a target policy would have earned, in a synthetic
world whose acceptance chances are known, logged by exploration's exact probabilities."""

from dataclasses import replace
from functools import cache

import numpy as np
import pytest
from numpy.polynomial.hermite_e import hermegauss
from scipy.special import expit
from scipy.stats import binom

from rapport.next_action.exploration import choose
from rapport.next_action.ope import (
    Candidate,
    DoublyRobust,
    InverseProbabilityWeighting,
    LoggedDecision,
    SelfNormalizedIPW,
    fixed_offer,
    logged_value,
    logging_policy,
    uniform_random,
)

# Five offers; a customer's P(accept) is expit(alpha + beta * x) with x ~ N(0, 1):
# frequent acceptances (as for retention offers), so a reward model has much to explain.
VALUE = np.array([20.0, 12.0, 30.0, 6.0, 15.0])
COST = np.array([2.0, 1.0, 3.0, 0.5, 1.5])
ALPHA = np.array([1.5, 1.0, 0.5, 2.0, 0.8])
BETA = np.array([0.8, -0.5, 1.0, 0.3, -0.8])
ELIGIBLE = 0.8  # each offer is a candidate independently with this chance
LIMIT, EPSILON = 2, 0.3
SEEDS = range(50)


def world(n: int, seed: int, epsilon: float = EPSILON,
          alpha: np.ndarray = ALPHA) -> list[LoggedDecision]:
    """Decisions ranked by a model that knows the true acceptance chances, two made each
    by exploration's epsilon-greedy last slot, with its exact probabilities."""
    rng = np.random.default_rng(seed)
    x = rng.normal(size=n)
    eligible = rng.random((n, len(VALUE))) < ELIGIBLE
    q = expit(alpha + BETA * x[:, None])
    ranks = np.argsort(np.where(eligible, -(q * VALUE - COST), np.inf), axis=1, kind="stable")
    u, r, accept = rng.random(n).tolist(), rng.random(n).tolist(), rng.random(q.shape) < q
    values, costs = VALUE.tolist(), COST.tolist()
    decisions = []
    for i, (row, qi, ai, count) in enumerate(zip(ranks.tolist(), q.tolist(), accept.tolist(),
                                                 eligible.sum(axis=1).tolist(), strict=True)):
        choice = choose(count, LIMIT, epsilon, u[i], r[i])
        made = set(choice.made)
        decisions.append(LoggedDecision(f"d{seed}-{i}", tuple(
            Candidate(f"o{o}", values[o], costs[o], qi[o], choice.probabilities[k],
                      made=k in made, accepted=ai[o])
            for k, o in enumerate(row[:count]))))
    return decisions


def mean_margin() -> np.ndarray:
    """E_x[q_o(x) * value_o - cost_o] per offer, by Gauss-Hermite quadrature."""
    nodes, weights = hermegauss(80)
    eq = expit(ALPHA[:, None] + BETA[:, None] * nodes) @ weights / weights.sum()
    return eq * VALUE - COST


def truth_fixed(offer: int) -> float:
    return ELIGIBLE * mean_margin()[offer]


def truth_uniform() -> float:
    # Each offer is a candidate w.p. ELIGIBLE, among 1 + Binomial(K - 1) candidates.
    k = len(VALUE)
    others = np.arange(k)
    inverse_count = float(binom.pmf(others, k - 1, ELIGIBLE) @ (1.0 / (1 + others)))
    return ELIGIBLE * inverse_count * float(mean_margin().sum())


TARGETS = {"fixed o2": (lambda d: fixed_offer(d, "o2"), truth_fixed(2)),  # mostly logged
           "fixed o3": (lambda d: fixed_offer(d, "o3"), truth_fixed(3)),  # mostly explored
           "uniform": (uniform_random, truth_uniform())}
ESTIMATORS = {"ips": InverseProbabilityWeighting(), "snips": SelfNormalizedIPW(),
              "dr": DoublyRobust()}


@cache
def one_world():
    return world(5000, seed=2024)


def poor_model(decisions):
    """The same logs with a reward model that knows nothing: P(accept) = 0.5 for all."""
    return [LoggedDecision(d.decision_id, tuple(
        Candidate(c.offer_id, c.value, c.cost, 0.5, c.probability, c.made, c.accepted)
        for c in d.candidates)) for d in decisions]


@cache
def replications():
    """Per target and estimator, over SEEDS worlds of 1000 decisions: (value, lo, hi)."""
    runs = {"ips": InverseProbabilityWeighting(interval="clt"),
            "snips": SelfNormalizedIPW(n_bootstrap=100), "dr": DoublyRobust(n_bootstrap=400),
            "dr clt": DoublyRobust(interval="clt")}
    out = {}
    for seed in SEEDS:
        d = world(1000, seed=seed)
        for tname, (policy, _) in TARGETS.items():
            target = policy(d)
            for ename, est in runs.items():
                e = replace(est, seed=seed).estimate(d, target)
                out.setdefault((tname, ename), []).append((e.value, *e.ci95))
        if seed < 25:  # the poor model's gain over IPS, or lack of it, is plain by then
            poor, target = poor_model(d), fixed_offer(d, "o3")
            e = DoublyRobust(interval="clt").estimate(poor, target)
            out.setdefault(("fixed o3", "dr poor"), []).append((e.value, *e.ci95))
    return {k: np.array(v) for k, v in out.items()}


def test_the_worlds_truths_are_clearly_positive():
    assert truth_fixed(2) > 5 and truth_fixed(3) > 2 and truth_uniform() > 5


@pytest.mark.parametrize(("tname", "ename"), [
    *((t, e) for t in TARGETS for e in ("ips", "snips", "dr")), ("fixed o3", "dr poor")])
def test_estimators_are_unbiased_over_replications(tname, ename):
    # SNIPS' O(1/n) bias is far below the noise at n = 1000; a poor reward model costs
    # DR variance, not bias.
    values = replications()[tname, ename][:, 0]
    truth = TARGETS[tname][1]
    se = values.std(ddof=1) / np.sqrt(len(values))
    assert abs(values.mean() - truth) < 3 * se


@pytest.mark.parametrize("tname", TARGETS)
def test_doubly_robust_is_within_15_percent_and_its_interval_holds_the_truth(tname):
    policy, truth = TARGETS[tname]
    d = one_world()
    e = DoublyRobust().estimate(d, policy(d))
    assert abs(e.value - truth) < 0.15 * truth
    assert e.ci95[0] < truth < e.ci95[1]
    for est in (InverseProbabilityWeighting(), SelfNormalizedIPW()):
        e = est.estimate(d, policy(d))
        assert abs(e.value - truth) < 0.15 * truth and e.ci95[0] < truth < e.ci95[1]


@pytest.mark.parametrize("tname", TARGETS)
@pytest.mark.parametrize("ename", ["dr", "dr clt"])
def test_doubly_robust_intervals_cover_about_95_percent_and_are_not_too_wide(tname, ename):
    r = replications()[tname, ename]
    truth = TARGETS[tname][1]
    coverage = np.mean((r[:, 1] < truth) & (truth < r[:, 2]))
    assert coverage >= 0.86  # 95% less three binomial standard errors over 50 worlds
    # Not covering by being wide: the width matches the spread across worlds.
    width = np.mean(r[:, 2] - r[:, 1]) / (2 * 1.96 * r[:, 0].std(ddof=1))
    assert 0.75 < width < 1.33


@pytest.mark.parametrize(("tname", "most"), [("fixed o3", 0.3), ("uniform", 0.85),
                                             ("fixed o2", 1.1)])
def test_doubly_robust_varies_less_than_ips_with_a_good_reward_model(tname, most):
    # DR only removes the variance of weighting a reward the model predicts, so it gains
    # most where the target differs most from the logs (o3 is mostly explored) and next
    # to nothing where it does not (o2 is mostly made anyway).
    r = replications()
    assert r[tname, "dr"][:, 0].var() < most * r[tname, "ips"][:, 0].var()
    d = one_world()
    target = TARGETS[tname][0](d)
    dr = DoublyRobust().estimate(d, target).contributions
    ips = InverseProbabilityWeighting().estimate(d, target).contributions
    assert dr.var() < most * ips.var()


def test_a_poor_reward_model_loses_doubly_robusts_advantage():
    r = replications()
    assert r["fixed o3", "dr poor"][:, 0].var() > 2 * r["fixed o3", "dr"][:, 0].var()


def test_charging_the_known_cost_exactly_lowers_variance_only_where_cost_dominates():
    # Exact cost changes a candidate's variance by -t^2 c (c - 2 q v) (1/p - 1): it helps
    # where the cost exceeds twice the expected margin, as with rare acceptances.
    def variances(decisions):
        target = uniform_random(decisions)
        return [est.estimate(decisions, target).contributions.var() for est in (
            InverseProbabilityWeighting(), InverseProbabilityWeighting(exact_cost=True),
            DoublyRobust())]

    weighted, exact, dr = variances(one_world())  # frequent acceptances: c < 2 q v
    assert exact > 1.05 * weighted and dr < weighted
    # About 1% accept, and each offer loses money: charging the cost exactly helps, and
    # DR, which does so too, is no worse.
    weighted, exact, dr = variances(world(5000, seed=11, alpha=ALPHA - 6.5))
    assert exact < 0.8 * weighted and dr < 1.02 * exact
    d = one_world()
    for exact_cost in (False, True):
        for est in (InverseProbabilityWeighting(exact_cost=exact_cost),
                    SelfNormalizedIPW(exact_cost=exact_cost)):
            e = est.estimate(d, uniform_random(d))
            assert e.ci95[0] < truth_uniform() < e.ci95[1]


def test_the_logging_policy_is_valued_at_what_it_earned():
    d = one_world()
    logged = logged_value(d)
    target = logging_policy(d)
    ips = InverseProbabilityWeighting().estimate(d, target)
    assert ips.value == pytest.approx(logged.value, rel=1e-12)
    np.testing.assert_allclose(ips.contributions, logged.contributions)
    assert ips.ci95 == pytest.approx(logged.ci95)
    # Every decision makes exactly its expected number, so SNIPS' scale is 1.
    assert SelfNormalizedIPW().estimate(d, target).value == pytest.approx(logged.value)
    dr = DoublyRobust().estimate(d, target)
    assert dr.ci95[0] < logged.value < dr.ci95[1]
    assert dr.value == pytest.approx(logged.value, rel=0.05)
    assert logged.ci95[0] < logged.value < logged.ci95[1]


def test_misreported_probabilities_are_caught_by_the_truth():
    # The check has teeth: IPW with the logs' probabilities replaced by a uniform 1/n
    # (as if exploration were uniform) is far from the truth.
    d = [replace(x, candidates=tuple(replace(c, probability=LIMIT / len(x.candidates)
                                             if len(x.candidates) > LIMIT else 1.0)
                                     for c in x.candidates))
         for x in one_world()]
    e = InverseProbabilityWeighting().estimate(d, fixed_offer(d, "o3"))
    assert not e.ci95[0] < truth_fixed(3) < e.ci95[1]


def test_targets_without_logging_support_are_refused():
    d = world(200, seed=7, epsilon=0.0)  # the tail is never made
    assert any(c.probability == 0 for x in d for c in x.candidates)
    for est in ESTIMATORS.values():
        with pytest.raises(ValueError, match=r"no support.*logging probability is 0"):
            est.estimate(d, uniform_random(d))
        # A target that stays where the logs have support is fine.
        assert np.isfinite(est.estimate(d, logging_policy(d)).value)
    made_unsupported = [LoggedDecision("x", (Candidate("a", 1, 0, 0.5, 0.0, made=True),))]
    with pytest.raises(ValueError, match=r"no support.*was made"):
        logged_value(made_unsupported)


def test_empty_and_mismatched_inputs_are_refused():
    for est in ESTIMATORS.values():
        with pytest.raises(ValueError, match="no decisions"):
            est.estimate([], [])
    with pytest.raises(ValueError, match="no decisions"):
        logged_value([])
    d = world(5, seed=1)
    with pytest.raises(ValueError, match="target has 4 decisions"):
        DoublyRobust().estimate(d, uniform_random(d)[:4])
    bad = [list(t) for t in uniform_random(d)]
    bad[0] = [*bad[0], 0.1]
    with pytest.raises(ValueError, match="target probabilities"):
        DoublyRobust().estimate(d, bad)
    with pytest.raises(ValueError, match="within"):
        DoublyRobust().estimate(d, [[2.0] * len(x.candidates) for x in d])
    with pytest.raises(ValueError, match="interval"):
        DoublyRobust(interval="exact").estimate(d, uniform_random(d))  # type: ignore[arg-type]


def test_a_target_that_makes_nothing_is_worth_nothing():
    d = world(50, seed=3)
    nothing = [[0.0] * len(x.candidates) for x in d]
    for est in ESTIMATORS.values():
        e = est.estimate(d, nothing)
        assert e.value == 0 and e.ci95 == (0.0, 0.0)


def test_intervals_are_seeded():
    d = world(300, seed=5)
    a = SelfNormalizedIPW(seed=1).estimate(d, uniform_random(d)).ci95
    assert a == SelfNormalizedIPW(seed=1).estimate(d, uniform_random(d)).ci95
    assert a != SelfNormalizedIPW(seed=2).estimate(d, uniform_random(d)).ci95
