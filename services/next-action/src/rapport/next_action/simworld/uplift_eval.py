"""The uplift learners judged in the uplift world, without services.

Each customer's Segment history is folded by the profile service's own fold, described,
scored and turned into features exactly as next-action sees them (as in
:mod:`.learners`). Then, in rounds, every customer gets one decision; each policy makes
the very same decisions with the very same draws of who buys, and learns from each
decision's window ``lag`` decisions later. A choice is valued at its true incremental
expected profit (uplift - the offer's cost, 0 for none): "never" earns 0 by definition.

Policies: always the 20% discount, never anything, the oracle (the best true incremental
profit or nothing) and each learner, greedy on incremental margin - cost + optimism x sd,
nothing when that is not positive, with a random per-offer holdout like the service's.

Findings (``rapport eval-uplift``: 2,000 customers x 10 rounds, seeds 1-3, holdout
10%, optimism 0.15). Second-half incremental profit per decision: always discount
-1.67, never 0, oracle 1.57, two-model 0.86 (0.55 +- 0.01 of the oracle), transformed
outcome 0.59 (0.38 +- 0.13). Qini against the truth at the end, discount20 / retention10
/ recognition: two-model 0.79 / 0.53 / 0.76, transformed outcome 0.67 / 0.25 / 0.31.
The two-model learner is better and steadier: with a 10% holdout the transformed
outcome's variance is 1 / (0.9 x 0.1) = 11 times the outcome's, it learns only from
decisions whose chance of the offer was strictly between 0 and 1, and it shares
nothing across offers, whereas the two-model's offers are fitted as deviations from
one no-offer model that every response without an offer teaches. (An online version of
the two-model, ADF probit with shared weights, reached 0.60 here but 0.29 through the
running services, where its arms drifted apart as they saw different customers; the
batch refit reaches 0.51 and 0.39 there.) Context: a policy that knew the kind each
history shows (10% of histories are another kind's) would reach about 0.86 of the
oracle before the holdout's cost.
"""

from __future__ import annotations

import random
import time
from collections import Counter, deque
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime

import numpy as np

from rapport.shared import facts
from rapport.shared.scores.compute import ScoringPolicy, score
from rapport.shared.scores.model import PRIOR

from .. import uplift
from ..features import INDEX, base_features, profile_values
from ..uplift_quality import qini_against_truth
from . import uplift_world as world
from .learners import fold_histories, population

NOW = datetime(2026, 6, 1, 12, tzinfo=UTC)
PARAMS = world.Params()
COST = {o["offer_id"]: float(o["cost"]) for o in world.OFFERS}


@dataclass(frozen=True)
class Setup:
    holdout: float = 0.10
    """Chance an offer the learner would make is withheld (and logged as such)."""
    optimism: float = 0.15
    """The learners rank incremental margin - cost + optimism x sd."""
    lag: int = 500
    """Decisions made before one's window closes and its response is learnt."""
    channel: str = "email"


@dataclass
class SimCustomer:
    customer: world.Customer
    x: np.ndarray


def sim_customers(n: int, seed: int, params: world.Params = PARAMS,
                  channel: str = "email", now: datetime = NOW) -> list[SimCustomer]:
    """The customers with their feature vectors, their histories folded as the services do."""
    people = world.customers(n, seed, params)
    profiles = fold_histories([(c.customer_id, world.touchpoints(c, now)) for c in people],
                              now)
    pop = population(profiles, now)
    out = []
    for c, p in zip(people, profiles, strict=True):
        scores = score(p, now, PRIOR, pop, ScoringPolicy(), None).model_dump(mode="json")
        x = base_features(channel)
        for name, v in profile_values(facts.describe(p, now), scores).items():
            x[INDEX[name]] = v
        out.append(SimCustomer(c, x))
    return out


class Policy:
    name = ""

    def choose(self, s: SimCustomer) -> tuple[str | None, dict[str, float]]:
        """The offer made (or None) and each offer's chance of being made."""
        raise NotImplementedError

    def learn(self, r: uplift.Response) -> None:
        pass


class Always(Policy):
    name = "always discount20"

    def choose(self, s):
        return "discount20", {"discount20": 1.0}


class Never(Policy):
    name = "never (no offer)"

    def choose(self, s):
        return None, {}


class Oracle(Policy):
    name = "oracle"

    def __init__(self, params: world.Params) -> None:
        self.params = params

    def choose(self, s):
        o = world.oracle_offer(s.customer, self.params)
        return o, ({o: 1.0} if o else {})


class Learned(Policy):
    def __init__(self, learner: str, setup: Setup, seed: int) -> None:
        self.model = uplift.LEARNERS[learner]()
        self.name = f"learned: {learner}"
        self.setup = setup
        self.draws = random.Random(f"holdout:{seed}")
        self.costs = np.array([COST[o] for o in world.OFFER_IDS])
        self.seconds = {"estimate": 0.0, "learn": 0.0}
        self.calls = Counter[str]()

    def choose(self, s):
        t = time.perf_counter()
        est = self.model.estimate(world.OFFER_IDS, s.x)
        self.seconds["estimate"] += time.perf_counter() - t
        self.calls["estimate"] += 1
        value = np.array([e.incremental_margin + self.setup.optimism * e.sd for e in est])
        value -= self.costs
        i = int(np.argmax(value))
        if value[i] <= 0:
            return None, {}
        o = world.OFFER_IDS[i]
        chances = {o: 1.0 - self.setup.holdout}
        return (None if self.draws.random() < self.setup.holdout else o), chances

    def learn(self, r):
        t = time.perf_counter()
        self.model.learn(r)
        self.seconds["learn"] += time.perf_counter() - t
        self.calls["learn"] += 1


@dataclass
class Result:
    policy: str
    seed: int
    profit: float  # true incremental expected profit per decision, all decisions
    second_half: float
    oracle_second_half: float
    made: Counter[str] = field(default_factory=Counter)
    qini: dict[str, float] = field(default_factory=dict)  # per offer, against the truth
    micros: dict[str, float] = field(default_factory=dict)  # per call: estimate, learn


def policies(params: world.Params, setup: Setup, seed: int) -> list[Policy]:
    return [Always(), Never(), Oracle(params), *(Learned(n, setup, seed)
                                                 for n in uplift.LEARNERS)]


def run_seed(n_customers: int, rounds: int, seed: int, params: world.Params = PARAMS,
             setup: Setup = Setup(), progress: Callable[[int], object] | None = None,
             ) -> list[Result]:
    """Every policy on the same customers, decisions and purchase draws of one seed."""
    sims = sim_customers(n_customers, seed, params, setup.channel)
    order = random.Random(f"rounds:{seed}")
    plan = [s for _ in range(rounds) for s in order.sample(sims, len(sims))]
    half = len(plan) // 2
    truth = {o: np.array([world.true_uplift(s.customer, params)[o] for s in sims])
             for o in world.OFFER_IDS}
    oracle = np.array([world.true_profit(s.customer, world.oracle_offer(s.customer, params),
                                         params) for s in plan])
    out = []
    for policy in policies(params, setup, seed):
        value = np.zeros(len(plan))
        made: Counter[str] = Counter()
        pending: deque[uplift.Response] = deque()
        for i, s in enumerate(plan):
            offer, chances = policy.choose(s)
            made[offer or "none"] += 1
            value[i] = world.true_profit(s.customer, offer, params)
            bought, basket, discount = world.respond(s.customer, offer,
                                                     random.Random(f"{seed}:{i}"), params)
            pending.append(uplift.Response(s.x, offer, chances, bought,
                                           world.margin(basket, discount, params)))
            if len(pending) > setup.lag:
                policy.learn(pending.popleft())
            if progress is not None and (i + 1) % 1000 == 0:
                progress(1000)
        if progress is not None:
            progress(len(plan) % 1000)
        r = Result(policy.name, seed, float(value.mean()), float(value[half:].mean()),
                   float(oracle[half:].mean()), made)
        if isinstance(policy, Learned):
            xs = [s.x for s in sims]
            for j, o in enumerate(world.OFFER_IDS):
                scores = [policy.model.estimate(world.OFFER_IDS, x)[j].incremental_margin
                          for x in xs]
                r.qini[o] = qini_against_truth(scores, truth[o])
            r.micros = {k: 1e6 * v / max(policy.calls[k], 1) for k, v in policy.seconds.items()}
        out.append(r)
    return out


def summary(results: Sequence[Result]) -> dict[str, dict[str, float]]:
    """Per policy, the means over seeds (and the seeds' sd of the ratio to the oracle)."""
    out: dict[str, dict[str, float]] = {}
    for name in dict.fromkeys(r.policy for r in results):
        rs = [r for r in results if r.policy == name]
        ratios = [r.second_half / r.oracle_second_half for r in rs]
        row = {"profit": float(np.mean([r.profit for r in rs])),
               "second_half": float(np.mean([r.second_half for r in rs])),
               "over_oracle": float(np.mean(ratios)), "sd_over_oracle": float(np.std(ratios))}
        for o in rs[0].qini:
            row[f"qini:{o}"] = float(np.mean([r.qini[o] for r in rs]))
        for k in rs[0].micros:
            row[f"us:{k}"] = float(np.mean([r.micros[k] for r in rs]))
        out[name] = row
    return out


def tables(results: Sequence[Result], title: str) -> list:  # -> list[rich.table.Table]
    from rich.table import Table

    rows = summary(results)
    t = Table(title=title)
    for col in ("policy", "profit/decision", "2nd half", "2nd / oracle", "made (share)"):
        t.add_column(col, justify="left" if col in ("policy", "made (share)") else "right")
    for name, r in rows.items():
        made = sum((x.made for x in results if x.policy == name), Counter())
        t.add_row(name, f"{r['profit']:.3f}", f"{r['second_half']:.3f}",
                  f"{r['over_oracle']:.2f} ± {r['sd_over_oracle']:.2f}",
                  " ".join(f"{k[:5]} {v / made.total():.0%}" for k, v in made.most_common()))
    q = Table(title="Qini against the truth at the end (1 = ranks like the truth, 0 = random)")
    q.add_column("learner")
    for o in world.OFFER_IDS:
        q.add_column(o, justify="right")
    q.add_column("estimate µs", justify="right")
    q.add_column("learn µs", justify="right")
    for name, r in rows.items():
        if f"qini:{world.OFFER_IDS[0]}" in r:
            q.add_row(name, *(f"{r[f'qini:{o}']:.2f}" for o in world.OFFER_IDS),
                      f"{r['us:estimate']:.0f}", f"{r['us:learn']:.0f}")
    return [t, q]

