"""No needless discounts (issue 15), shown in a simulated world through the running
services only: ingest, the profile API and next-action's HTTP API. Customers of four
hidden kinds (loyal, persuadable, sleeping dogs, lost) differ in how a discount changes
what they buy; the service sees only their behaviour and what it measures against its
holdouts and control group. The figures are printed (``pytest -s``).

A short run (600 customers, 10 rounds): it asserts what holds at this size, that the
service learns to beat both always and never discounting (over its last three rounds:
with 8 rounds and the second half, one run of four on 2026-12-04 earned -0.003 there,
still learning in rounds 5 and 6, then 0.20 and 0.52) and that its models rank the
discount's uplift better than chance; how close it comes to the oracle is measured at
full size by ``rapport eval-uplift --live`` (README).

The world starts from a fresh uplift learner, as a new deployment would: the other
end-to-end worlds on this stack teach the same learner thousands of customers of other
kinds, whose windows (and the no-offer arm every offer is measured against) blurred its
Qini from about 0.6 to 0.3 in a full run."""

import math

import pytest
import redis.asyncio as aioredis
from rich.console import Console

from rapport.next_action import uplift
from rapport.next_action.simworld import uplift_run
from rapport.shared import keys
from tests.e2e.conftest import UPLIFT_WINDOW_S


@pytest.fixture
async def fresh_learner(system):
    """Forget what the uplift learners learnt from the other worlds' decisions."""
    r = aioredis.from_url(system.redis_url)
    try:
        await r.delete(*(keys.uplift_model(name) for name in uplift.LEARNERS))
    finally:
        await r.aclose()
    return system


@pytest.mark.timeout(1200)  # ~5-6 min alone; a busy machine must not fail it
async def test_the_service_learns_whom_a_discount_changes(fresh_learner):
    system = fresh_learner
    urls = {name: system.url(name) for name in ("ingest", "profile", "next-action")}
    run = await uplift_run.run_uplift_world(urls, n_customers=600, rounds=10, seed=3,
                                            window_s=UPLIFT_WINDOW_S, say=print)
    Console(width=130).print(run.table())
    for o in run.report["offers"]:
        print(o["offer_id"], "incremental profit", o["incremental_profit"],
              o["incremental_profit_ci95"], "qini", o["qini"]["coefficient"])
    half = run.learned_second_half
    print(f"second half: service {half:.3f}, always {run.always:.3f}, never 0, oracle "
          f"{run.oracle:.3f} ({half / run.oracle:.2f} of the oracle)")
    last = sum(run.learned[-3:]) / 3
    print(f"last three rounds: service {last:.3f}")
    assert all(math.isfinite(v) for v in run.learned)
    assert last > max(run.always, 0.0)
    assert run.learned[-1] > run.learned[0]
    assert run.qini["discount20"] > 0
    offers = {o["offer_id"]: o for o in run.report["offers"]}
    assert offers["discount20"]["treated"]["decisions"] > 0
    assert offers["discount20"]["held_out"]["decisions"] > 0
    assert run.report["overall"]["control"]["decisions"] > 0
