"""The response learners compared offline in the simulated world, without services.

Each simulated customer's touchpoints are folded into a profile by the profile
service's own fold, described and scored as next-action would see them (the prior CLV
model, the population of all the simulated customers), and turned into features. Then
every policy makes the very same decisions (who, on which channel, and the uniform
draw that decides acceptance), learning from the outcomes of the offers it makes; each
choice is valued at its hidden expected profit, next to the best static offer and the
oracle on the same decisions. Evaluation code: not used by the service at run time.
"""

from __future__ import annotations

import random
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime

import numpy as np

from rapport.ingest.domain import normalize  # the workspace installs every service
from rapport.ingest.settings import Source
from rapport.profile import domain as profile_domain
from rapport.shared import facts
from rapport.shared.events import Touchpoint
from rapport.shared.profiles import CustomerProfile
from rapport.shared.scores import rfm
from rapport.shared.scores.compute import ScoringPolicy, point, score
from rapport.shared.scores.model import PRIOR
from rapport.shared.scores.population import ListPopulation

from .. import exploration
from ..features import FEATURES, INDEX, base_features, profile_values
from ..learner import BetaModel, ProbitModel
from . import world

NOW = datetime(2026, 6, 1, 12, tzinfo=UTC)
VALUE = {o["offer_id"]: o["value"] for o in world.OFFERS}
COST = {o["offer_id"]: o["cost"] for o in world.OFFERS}
ON = {c: world.offers_on(c) for c in world.CHANNELS}


@dataclass(frozen=True)
class Hyper:
    kappa: float = 2.0
    """Optimism of probit-ucb: the propensity ranked is mean + kappa x sd."""
    epsilon: float = 0.02
    """Share of probit-ucb's decisions that make a uniformly drawn candidate."""
    beta: float = 1.0
    offer_var: float = 0.05
    shared_var: float = 0.1
    intercept_var: float = 0.5
    prior_weight: float = 20.0
    """Pseudo-decisions at 5% in the Beta baselines' prior."""


@dataclass
class SimCustomer:
    customer: world.Customer
    x: np.ndarray  # the customer part of the features (the channel's part zero)


def fold_histories(histories: Sequence[tuple[str, list[dict]]], now: datetime = NOW,
                   ) -> list[CustomerProfile]:
    """Profiles exactly as the profile service folds each (customer id, Segment messages)."""
    source = Source(source="sim")
    out = []
    for customer_id, messages in histories:
        p: CustomerProfile | None = None
        for i, msg in enumerate(messages):
            tp = normalize(msg, index=i, source=source, received_at=now)
            if isinstance(tp, Touchpoint):  # the worlds send only valid messages
                p = profile_domain.apply_owned(p, tp, customer_id=customer_id,
                                               processed_at=now)
        out.append(p or CustomerProfile(customer_id=customer_id))
    return out


def fold(people: Sequence[world.Customer], now: datetime = NOW) -> list[CustomerProfile]:
    """The decision world's customers' profiles, folded as the profile service does."""
    return fold_histories([(c.customer_id, world.touchpoints(c, now)) for c in people], now)


def population(profiles: Sequence[CustomerProfile], now: datetime = NOW) -> ListPopulation:
    """The population the scores rank against: every simulated buyer's point."""
    empty = ListPopulation({})
    points = [point(p, score(p, now, PRIOR, empty)) for p in profiles]
    pts = [q for q in points if q is not None]
    return ListPopulation({rfm.RECENCY: [q.last_day for q in pts],
                           rfm.FREQUENCY: [q.purchase_days for q in pts],
                           rfm.MONETARY: [q.total for q in pts],
                           rfm.VALUE: [q.value for q in pts]})


def sim_customers(n: int, seed: int, now: datetime = NOW) -> list[SimCustomer]:
    people = world.customers(n, seed)
    profiles = fold(people, now)
    pop = population(profiles, now)
    out = []
    for c, p in zip(people, profiles, strict=True):
        body = facts.describe(p, now)
        scores = score(p, now, PRIOR, pop, ScoringPolicy(), None).model_dump(mode="json")
        x = np.zeros(len(FEATURES))
        for name, v in profile_values(body, scores).items():
            x[INDEX[name]] = v
        out.append(SimCustomer(c, x))
    return out


class Policy:
    """Chooses at most one offer for a customer on a channel and learns from its outcome."""

    name = ""

    def choose(self, x: np.ndarray, channel: str, offers: list[str]) -> str | None:
        raise NotImplementedError

    def learn(self, offer: str, x: np.ndarray, channel: str, accepted: bool) -> None:
        raise NotImplementedError


def _best(offers: list[str], p: np.ndarray) -> str | None:
    """The offer of highest p x value - cost, if positive ("no action" otherwise)."""
    profit = p * np.array([VALUE[o] for o in offers]) - np.array([COST[o] for o in offers])
    i = int(np.argmax(profit))
    return offers[i] if profit[i] > 0 else None


class ServiceToday(Policy):
    """(a) Per-offer acceptance rate shrunk toward 5%, greedy: the service today."""

    name = "(a) service today: rate per offer"

    def __init__(self, h: Hyper, seed: int) -> None:
        self.model = BetaModel(prior_weight=h.prior_weight)

    def choose(self, x, channel, offers):
        return _best(offers, self.model.mean(offers))

    def learn(self, offer, x, channel, accepted):
        self.model.update(offer, accepted)


class BetaThompson(Policy):
    """(b) Thompson sampling from a Beta posterior per offer x channel."""

    name = "(b) Beta Thompson, offer x channel"

    def __init__(self, h: Hyper, seed: int) -> None:
        self.model = BetaModel(prior_weight=h.prior_weight)
        self.rng = np.random.default_rng(seed)

    def choose(self, x, channel, offers):
        return _best(offers, self.model.sample([f"{o}|{channel}" for o in offers], self.rng))

    def learn(self, offer, x, channel, accepted):
        self.model.update(f"{offer}|{channel}", accepted)


class _Probit(Policy):
    def __init__(self, h: Hyper, seed: int) -> None:
        self.h = h
        self.model = ProbitModel(beta=h.beta, offer_var=h.offer_var, shared_var=h.shared_var,
                                 intercept_var=h.intercept_var)
        self.rng = np.random.default_rng(seed)
        self.draws = random.Random(f"explore:{seed}")

    def learn(self, offer, x, channel, accepted):
        self.model.update(offer, x, accepted)


class ProbitUcb(_Probit):
    """(c) Optimistic expected profit (upper propensity), epsilon via exploration.choose."""

    name = "(c) probit, optimistic + epsilon"

    def choose(self, x, channel, offers):
        p = self.model.upper(offers, x, self.h.kappa)
        profit = p * np.array([VALUE[o] for o in offers]) - np.array([COST[o] for o in offers])
        ranked = [offers[i] for i in np.argsort(-profit, kind="stable") if profit[i] > 0]
        got = exploration.choose(len(ranked), 1, self.h.epsilon, self.draws.random(),
                                 self.draws.random())
        return ranked[got.made[0]] if got.made else None


class ProbitThompson(_Probit):
    """(d) Thompson sampling: propensities from weights drawn from the posterior."""

    name = "(d) probit, Thompson"

    def choose(self, x, channel, offers):
        return _best(offers, self.model.sample(offers, x, self.rng))


class ProbitGreedy(_Probit):
    """(e) The posterior predictive mean, no exploration beyond the prior's."""

    name = "(e) probit, greedy on the mean"

    def choose(self, x, channel, offers):
        return _best(offers, self.model.predict(offers, x)[0])


POLICIES: tuple[type[Policy], ...] = (ServiceToday, BetaThompson, ProbitUcb, ProbitThompson,
                                      ProbitGreedy)


@dataclass
class Result:
    policy: str
    seed: int
    profit: float  # expected profit per decision, all decisions
    second_half: float
    static: float
    static_second_half: float
    oracle: float
    oracle_second_half: float
    shown: dict[str, int] = field(default_factory=dict)


def run_seed(n_customers: int, decisions: int, seed: int, h: Hyper = Hyper(),
             policies: Sequence[type[Policy]] = POLICIES,
             progress: Callable[[int], object] | None = None) -> list[Result]:
    """Every policy on the same customers and the same decisions of one seed."""
    sims = sim_customers(n_customers, seed)
    rng = random.Random(f"decisions:{seed}")
    plan = [(rng.choice(sims), rng.choice(world.CHANNELS), rng.random())
            for _ in range(decisions)]
    half = decisions // 2
    static = np.array([world.expected_profit(s.customer, world.best_static_offer(ch), ch)
                       for s, ch, _ in plan])
    oracle = np.array([world.expected_profit(s.customer, world.oracle_offer(s.customer, ch),
                                             ch) for s, ch, _ in plan])
    base = {c: base_features(c) for c in world.CHANNELS}
    out = []
    for cls in policies:
        policy = cls(h, seed)
        value = np.zeros(decisions)
        shown: dict[str, int] = {}
        for i, (s, channel, draw) in enumerate(plan):
            x = s.x + base[channel]
            offer = policy.choose(x, channel, ON[channel])
            if offer is not None:
                shown[offer] = shown.get(offer, 0) + 1
                value[i] = world.expected_profit(s.customer, offer, channel)
                accepted = draw < world.accept_probability(s.customer, offer, channel)
                policy.learn(offer, x, channel, accepted)
            if progress is not None and (i + 1) % 1000 == 0:
                progress(1000)
        if progress is not None:
            progress(decisions % 1000)
        out.append(Result(cls.name, seed, float(value.mean()), float(value[half:].mean()),
                          float(static.mean()), float(static[half:].mean()),
                          float(oracle.mean()), float(oracle[half:].mean()), shown))
    return out


def summary(results: Sequence[Result]) -> dict[str, dict[str, float]]:
    """Per policy, the mean over seeds of each figure (and the second half's ratios)."""
    out: dict[str, dict[str, float]] = {}
    for name in dict.fromkeys(r.policy for r in results):
        rs = [r for r in results if r.policy == name]
        row = {k: float(np.mean([getattr(r, k) for r in rs]))
               for k in ("profit", "second_half", "static", "static_second_half", "oracle",
                         "oracle_second_half")}
        row["over_static"] = row["second_half"] / row["static_second_half"]
        row["over_oracle"] = row["second_half"] / row["oracle_second_half"]
        row["seed_sd_over_oracle"] = float(np.std(
            [r.second_half / r.oracle_second_half for r in rs]))
        out[name] = row
    return out


def table(results: Sequence[Result], title: str):  # -> rich.table.Table
    from rich.table import Table

    t = Table(title=title)
    for col in ("policy", "profit/decision", "2nd half", "static 2nd", "oracle 2nd",
                "2nd / static", "2nd / oracle"):
        t.add_column(col, justify="left" if col == "policy" else "right")
    for name, r in summary(results).items():
        t.add_row(name, f"{r['profit']:.3f}", f"{r['second_half']:.3f}",
                  f"{r['static_second_half']:.3f}", f"{r['oracle_second_half']:.3f}",
                  f"{r['over_static']:.2f}",
                  f"{r['over_oracle']:.2f} ± {r['seed_sd_over_oracle']:.2f}")
    return t
