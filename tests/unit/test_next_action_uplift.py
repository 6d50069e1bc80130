"""The uplift learners recover a known uplift, know what they do not know, keep to the
interface's arithmetic, and survive storage; the uplift world's evaluation is seeded and
the learned policy earns more than both always and never discounting."""

import random

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from rapport.next_action import uplift
from rapport.next_action.features import FEATURES, INDEX
from rapport.next_action.simworld import uplift_eval, uplift_world

D = len(FEATURES)
K = INDEX["has_discounts"]
NAMES = list(uplift.LEARNERS)


def _x(k: float, r: float = 0.5) -> np.ndarray:
    x = np.zeros(D)
    x[0] = x[INDEX["channel_email"]] = 1.0
    x[K], x[INDEX["rfm_r"]] = k, r
    return x


def _world(learner, n: int, seed: int = 0) -> None:
    """Treatment (made with chance 0.5) raises P(buy) from 0.1 to 0.4 only where k = 1;
    a purchase's margin is 30."""
    rng = np.random.default_rng(seed)
    for _ in range(n):
        x = _x(float(rng.random() < 0.5), float(rng.random()))
        made = "a" if rng.random() < 0.5 else None
        bought = bool(rng.random() < (0.4 if made and x[K] else 0.1))
        learner.learn(uplift.Response(x, made, {"a": 0.5}, bought, 30.0 if bought else 0.0))


@pytest.mark.parametrize("name", NAMES)
def test_a_known_uplift_is_recovered_where_it_is_and_nowhere_else(name):
    learner = uplift.LEARNERS[name]()
    _world(learner, 6000)
    on, off = learner.estimate(["a"], _x(1.0))[0], learner.estimate(["a"], _x(0.0))[0]
    assert on.incremental_response == pytest.approx(0.3, abs=0.06)
    assert off.incremental_response == pytest.approx(0.0, abs=0.06)
    assert on.incremental_margin == pytest.approx(9.0, abs=2.0)
    assert off.incremental_margin == pytest.approx(0.0, abs=2.0)
    assert on.p_without == pytest.approx(0.1, abs=0.05)
    assert on.n_with + on.n_without == 6000 and abs(on.n_with - 3000) < 200
    assert learner.version == 6000


@pytest.mark.parametrize("name", NAMES)
def test_uncertainty_shrinks_with_data(name):
    learner = uplift.LEARNERS[name]()
    sds = [learner.estimate(["a"], _x(1.0))[0].sd]
    for n in (200, 2000):
        _world(learner, n, seed=n)
        sds.append(learner.estimate(["a"], _x(1.0))[0].sd)
    assert sds[0] > sds[1] > sds[2] > 0
    assert sds[0] > 3 * sds[2]


@pytest.mark.parametrize("name", NAMES)
def test_without_data_with_and_without_are_the_same_and_uncertain(name):
    learner = uplift.LEARNERS[name]()
    assert learner.estimate(["a"], _x(0.0, 0.0))[0].p_with == pytest.approx(0.2)  # the prior
    est = learner.estimate(["a", "b"], _x(1.0))
    for e in est:
        assert e.p_with == e.p_without
        assert e.incremental_response == 0 and e.incremental_margin == 0
        assert e.sd > 5  # money: optimism x sd explores what has never been tried
        assert e.n_with == e.n_without == 0
    assert [e.offer_id for e in est] == ["a", "b"]


@pytest.mark.parametrize("name", NAMES)
@settings(max_examples=25, deadline=None)
@given(data=st.lists(st.tuples(st.lists(st.floats(0, 1), min_size=3, max_size=3),
                               st.sampled_from([None, "a", "b"]), st.booleans(),
                               st.floats(-50, 200), st.floats(0.01, 1.0)),
                     max_size=30))
def test_estimates_keep_the_interface_arithmetic_and_round_trip(name, data):
    learner = uplift.LEARNERS[name]()
    for (a, b, c), made, bought, margin, e in data:
        x = _x(a, b)
        x[INDEX["email_open_rate"]] = c
        chances = {made: e} if made else {"a": e}
        learner.learn(uplift.Response(x, made, chances, bought, margin if bought else 0.0))
    x = _x(0.3, 0.7)
    for est in learner.estimate(["a", "b", "new"], x):
        assert est.incremental_response == est.p_with - est.p_without
        assert est.incremental_margin == pytest.approx(est.margin_with - est.margin_without)
        assert est.sd > 0 and 0 <= est.p_with <= 1 and 0 <= est.p_without <= 1
    raw = learner.to_bytes()
    back = uplift.LEARNERS[name].from_bytes(raw)
    assert back.to_bytes() == raw
    assert back.estimate(["a", "b", "new"], x) == learner.estimate(["a", "b", "new"], x)
    assert back.version == learner.version == len(data)


def test_load_starts_over_on_nothing_garbage_or_another_learner():
    two = uplift.TwoModelUplift()
    _world(two, 50)
    assert uplift.load("two_model", two.to_bytes()).version == 50
    for raw in (None, b"", b"not json", b"{}", two.to_bytes()):
        fresh = uplift.load("transformed_outcome", raw)
        assert isinstance(fresh, uplift.TransformedOutcomeUplift) and fresh.version == 0


def test_transformed_outcome_learns_nothing_about_an_offer_it_could_not_but_make():
    learner = uplift.TransformedOutcomeUplift()
    before = learner.estimate(["a"], _x(1.0))[0]
    for bought in (True, False, True):
        learner.learn(uplift.Response(_x(1.0), "a", {"a": 1.0}, bought, 30.0 * bought))
        learner.learn(uplift.Response(_x(1.0), "b", {"a": 0.0, "b": 1.0}, bought, 9.0))
    assert learner.estimate(["a"], _x(1.0))[0] == before and learner.version == 6
    learner.learn(uplift.Response(_x(1.0), "a", {"a": 0.9}, True, 30.0))
    got = learner.estimate(["a"], _x(1.0))[0]
    assert got.incremental_margin > 0 and got.n_with == 1 and got.n_without == 0


def test_the_two_model_learns_the_no_offer_arm_from_control_and_holdout_alike():
    learner = uplift.TwoModelUplift()
    for i in range(40):
        learner.learn(uplift.Response(_x(1.0), None, {} if i % 2 else {"a": 0.9}, True, 20.0))
    e = learner.estimate(["a"], _x(1.0))[0]
    assert e.n_without == 40 and e.n_with == 0
    assert e.p_without > 0.5 and e.margin_without > 5


def test_the_world_responds_by_kind_and_values_by_the_truth():
    params = uplift_world.Params(taste_sd=0.0, basket_sd=0.0)
    people = {c.kind: c for c in uplift_world.customers(200, 3, params)}
    loyal, persuadable = people["loyal"], people["persuadable"]
    up = uplift_world.true_uplift(persuadable, params)
    b = persuadable.basket
    assert up["discount20"] == pytest.approx(0.45 * 0.3 * b - 0.05 * 0.5 * b)
    assert uplift_world.true_uplift(loyal, params)["discount20"] < 0
    assert uplift_world.oracle_offer(persuadable, params) == "discount20"
    assert uplift_world.oracle_offer(people["sleeping_dog"], params) is None
    rng = random.Random(1)
    draws = [uplift_world.respond(persuadable, "discount20", rng, params) for _ in range(4000)]
    assert np.mean([d[0] for d in draws]) == pytest.approx(0.45, abs=0.03)
    bought = [d for d in draws if d[0]]
    assert all(d[2] == pytest.approx(0.2 * d[1], abs=0.01) for d in bought)
    msgs = uplift_world.touchpoints(persuadable, uplift_eval.NOW)
    orders = [m for m in msgs if m.get("event") == "Order Completed"]
    assert orders and all(m["timestamp"] < uplift_eval.NOW.isoformat() for m in msgs)


def test_a_short_evaluation_is_seeded_and_learning_beats_always_and_never():
    a = uplift_eval.run_seed(400, 8, 5)
    b = uplift_eval.run_seed(400, 8, 5)
    assert [(r.policy, r.profit, r.qini) for r in a] == [(r.policy, r.profit, r.qini) for r in b]
    rows = {r.policy: r for r in a}
    oracle = rows["oracle"].second_half
    assert rows["always discount20"].second_half < 0 == rows["never (no offer)"].second_half
    for r in a:
        assert r.second_half <= oracle + 1e-12
    two = rows["learned: two_model"]
    # 0.36 of the oracle here (0.21-0.46 over seeds 1-3 at this size); 0.59 at 2,000 x 10
    assert two.second_half > 0.15 * oracle
    assert all(q > 0.1 for q in two.qini.values())  # ranks better than chance
