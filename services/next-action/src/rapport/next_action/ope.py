"""Off-policy evaluation: what another policy would have earned on the decisions logged.

Exploration (``exploration.py``) logs, per decision, each candidate's exact chance of
being made, so a new policy can be valued from past decisions before it is served.

Model (additive / item-position slates): a decision's reward is the sum over its made
candidates of ``accepted * value - cost``, and whether a candidate is accepted does not
depend on what else was made. A target policy is given per decision by each
candidate's probability of being made at any rank, ``target[i][j]``; its value is the
mean over decisions of ``sum_j target_ij * (P(accept_ij) * value_ij - cost_ij)``.

Each estimator returns per-decision ``contributions`` (their mean is the value) and a
95% interval: by default a seeded percentile bootstrap over decisions; IPW and DR also
offer ``interval="clt"`` (mean +- 1.96 standard errors). Pure: no I/O.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from operator import attrgetter
from typing import Literal

import numpy as np

_Z95 = 1.959963984540054
_CELLS = 2_000_000  # bootstrap resamples are drawn in chunks of about this many indices


@dataclass(frozen=True)
class Candidate:
    offer_id: str
    value: float
    """Margin if accepted."""
    cost: float
    """Paid whenever the offer is made, accepted or not; known."""
    propensity: float
    """The model's P(accept): DR's reward model is ``propensity * value - cost``."""
    probability: float
    """The logging policy's exact chance of making this candidate (at any rank)."""
    made: bool
    accepted: bool = False
    """Only meaningful when made."""


@dataclass(frozen=True)
class LoggedDecision:
    decision_id: str
    candidates: tuple[Candidate, ...]


@dataclass(frozen=True, eq=False)
class Estimate:
    value: float
    ci95: tuple[float, float]
    contributions: np.ndarray
    """Per decision; their mean is ``value``."""


Target = Sequence[Sequence[float]]


@dataclass(frozen=True)
class _Logs:
    n: int
    decision: np.ndarray  # per candidate, the index of its decision
    value: np.ndarray
    cost: np.ndarray
    q: np.ndarray
    made: np.ndarray
    accepted: np.ndarray
    target: np.ndarray
    weight: np.ndarray  # target / probability, 0 where both are 0

    def per_decision(self, x: np.ndarray) -> np.ndarray:
        return np.bincount(self.decision, weights=x, minlength=self.n)


def _logs(decisions: Sequence[LoggedDecision], target: Target | None) -> _Logs:
    if not decisions:
        raise ValueError("no decisions to evaluate: off-policy estimates need logged decisions")
    if target is not None and len(target) != len(decisions):
        raise ValueError(f"target has {len(target)} decisions, the logs {len(decisions)}")
    for d, ti in zip(decisions, () if target is None else target, strict=False):
        if len(ti) != len(d.candidates):
            raise ValueError(f"decision {d.decision_id!r}: {len(ti)} target probabilities "
                             f"for {len(d.candidates)} candidates")
    sizes = np.array([len(d.candidates) for d in decisions], dtype=np.intp)
    fields = attrgetter("value", "cost", "propensity", "probability", "made", "accepted")
    a = np.array([fields(c) for d in decisions for c in d.candidates],
                 dtype=float).reshape(-1, 6)
    a[:, 5] *= a[:, 4]  # accepted only counts when made
    p = a[:, 3]
    t = p.copy() if target is None else np.array([x for ti in target for x in ti], float)

    def where(j: int) -> str:
        i = int(np.searchsorted(np.cumsum(sizes), j, side="right"))
        c = decisions[i].candidates[j - int(sizes[:i].sum())]
        return f"decision {decisions[i].decision_id!r}, offer {c.offer_id!r}"

    if len(bad := np.flatnonzero(~((p >= 0) & (p <= 1) & (t >= 0) & (t <= 1)))):
        raise ValueError(f"{where(bad[0])}: probabilities must be within [0, 1]")
    if len(bad := np.flatnonzero((p == 0) & ((a[:, 4] > 0) | (t > 0)))):
        j = int(bad[0])
        why = "was made" if a[j, 4] else f"has target probability {t[j]:g}"
        raise ValueError(f"no support: {where(j)} {why} but its logging probability is 0, "
                         "so the logs say nothing of its reward")
    w = np.divide(t, p, out=np.zeros_like(t), where=p > 0)
    return _Logs(len(decisions), np.repeat(np.arange(len(decisions)), sizes), a[:, 0],
                 a[:, 1], a[:, 2], a[:, 4], a[:, 5], t, w)


def _bootstrap(parts: np.ndarray, combine: Callable[[np.ndarray], np.ndarray],
               n_bootstrap: int, seed: int) -> tuple[float, float]:
    """Percentile interval of ``combine`` over resamples of whole decisions.

    ``parts`` holds one row per decision; ``combine`` maps rows of column means to the
    estimate, so ratio estimators resample numerator and denominator together.
    """
    rng = np.random.default_rng(seed)
    n = len(parts)
    columns = [np.ascontiguousarray(c) for c in parts.T]
    chunk = max(1, _CELLS // n)
    stats = []
    for start in range(0, n_bootstrap, chunk):
        idx = rng.integers(0, n, size=(min(chunk, n_bootstrap - start), n), dtype=np.int32)
        stats.append(combine(np.column_stack([c[idx].mean(axis=1) for c in columns])))
    lo, hi = np.percentile(np.concatenate(stats), [2.5, 97.5])
    return float(lo), float(hi)


def _linear(contributions: np.ndarray, interval: str, n_bootstrap: int,
            seed: int) -> Estimate:
    value = float(contributions.mean())
    if interval == "clt":
        se = float(contributions.std(ddof=1)) / np.sqrt(len(contributions)) \
            if len(contributions) > 1 else float("inf")
        return Estimate(value, (value - _Z95 * se, value + _Z95 * se), contributions)
    if interval != "bootstrap":
        raise ValueError(f"interval must be 'bootstrap' or 'clt', not {interval!r}")
    ci = _bootstrap(contributions[:, None], lambda m: m[:, 0], n_bootstrap, seed)
    return Estimate(value, ci, contributions)


@dataclass(frozen=True)
class InverseProbabilityWeighting:
    """IPW: each made candidate's reward weighted by ``target / probability``.

    Unbiased whenever the logged probabilities are exact and cover the target. With
    ``exact_cost`` the known cost is charged as ``target * cost`` and only the
    acceptance part is weighted. That is not always better: per candidate it changes
    the variance by ``-target^2 * cost * (cost - 2 * q * value) * (1/p - 1)``, so it
    helps only where cost exceeds twice the expected margin ``q * value``; otherwise the
    weighted cost acts as a control variate. ``DoublyRobust`` gets both right.
    """

    exact_cost: bool = False
    interval: Literal["bootstrap", "clt"] = "bootstrap"
    n_bootstrap: int = 1000
    seed: int = 0

    def estimate(self, decisions: Sequence[LoggedDecision], target: Target) -> Estimate:
        g = _logs(decisions, target)
        wm = g.weight * g.made
        x = (wm * g.accepted * g.value - g.target * g.cost if self.exact_cost
             else wm * (g.accepted * g.value - g.cost))
        return _linear(g.per_decision(x), self.interval, self.n_bootstrap, self.seed)


@dataclass(frozen=True)
class SelfNormalizedIPW:
    """SNIPS: IPW with its importance weights rescaled to the mass they should have.

    Over made candidates the weights ``w_ij = target_ij / probability_ij`` add up, in
    expectation, to the target's expected number of made candidates ``T = sum_ij
    target_ij``. SNIPS multiplies every weight by ``T / sum_ij w_ij * made_ij`` so that
    they add up to exactly ``T``: value = ``(sum w*made*reward) * T / (sum w*made) / n``.
    Biased by O(1/n) but not thrown by a few large weights: the value per expected made
    candidate stays within the observed rewards. With ``exact_cost`` only the acceptance
    part is normalised and ``target * cost`` is charged exactly. The bootstrap resamples
    numerator, denominator and ``T`` together.
    """

    exact_cost: bool = False
    n_bootstrap: int = 1000
    seed: int = 0

    def estimate(self, decisions: Sequence[LoggedDecision], target: Target) -> Estimate:
        g = _logs(decisions, target)
        wm = g.weight * g.made
        reward = g.accepted * g.value - (0.0 if self.exact_cost else g.cost)
        charged = g.target * g.cost if self.exact_cost else np.zeros_like(g.cost)
        parts = np.column_stack([g.per_decision(x) for x in
                                 (wm * reward, wm, g.target, charged)])
        num, mass, expected, cost = parts.mean(axis=0)
        if mass == 0 and expected > 0:
            raise ValueError("SNIPS is undefined: no made candidate has a positive target "
                             "probability")
        scale = expected / mass if mass > 0 else 0.0

        def combine(m: np.ndarray) -> np.ndarray:
            ratio = np.divide(m[:, 0] * m[:, 2], m[:, 1], out=np.zeros(len(m)),
                              where=m[:, 1] > 0)
            return ratio - m[:, 3]

        contributions = parts[:, 0] * scale - parts[:, 3]
        return Estimate(float(num * scale - cost),
                        _bootstrap(parts, combine, self.n_bootstrap, self.seed),
                        contributions)


@dataclass(frozen=True)
class DoublyRobust:
    """DR: the reward model's value of the target, plus IPW of the model's error.

    Per candidate ``target * (q * value - cost) + w * made * (accepted - q) * value``
    with ``q = propensity``. The known cost cancels out of the weighted error, so it is
    charged exactly; the model serves as a control variate for acceptance. Unbiased
    whatever ``q`` is (the logged probabilities being exact), and the closer ``q`` is to
    the true acceptance chance, the lower the variance.
    """

    interval: Literal["bootstrap", "clt"] = "bootstrap"
    n_bootstrap: int = 1000
    seed: int = 0

    def estimate(self, decisions: Sequence[LoggedDecision], target: Target) -> Estimate:
        g = _logs(decisions, target)
        x = (g.target * (g.q * g.value - g.cost)
             + g.weight * g.made * (g.accepted - g.q) * g.value)
        return _linear(g.per_decision(x), self.interval, self.n_bootstrap, self.seed)


def fixed_offer(decisions: Sequence[LoggedDecision], offer_id: str) -> list[list[float]]:
    """Make ``offer_id`` wherever it is a candidate, nothing elsewhere."""
    return [[1.0 if c.offer_id == offer_id else 0.0 for c in d.candidates]
            for d in decisions]


def uniform_random(decisions: Sequence[LoggedDecision]) -> list[list[float]]:
    """Make one candidate drawn uniformly: ``1/n`` each."""
    return [[1.0 / len(d.candidates)] * len(d.candidates) if d.candidates else []
            for d in decisions]


def logging_policy(decisions: Sequence[LoggedDecision]) -> list[list[float]]:
    """The policy that logged the decisions, as a target (a check on the estimators)."""
    return [[c.probability for c in d.candidates] for d in decisions]


def logged_value(decisions: Sequence[LoggedDecision], n_bootstrap: int = 1000,
                 seed: int = 0) -> Estimate:
    """The realised mean reward per decision, with a bootstrap interval."""
    g = _logs(decisions, None)
    rewards = g.per_decision(g.made * (g.accepted * g.value - g.cost))
    return _linear(rewards, "bootstrap", n_bootstrap, seed)
