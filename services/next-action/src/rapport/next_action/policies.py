"""Decision policies and the traffic split between them (``PUT /v1/policies``).

A policy is how the arbitration weighs what the one shared response model predicts:
how much it explores, how optimistic it is about what it knows little of, and the
business levers. Champion and challengers share the model and the eligibility rules;
they differ only here, which is what lets a logged decision be re-ranked by any of
them for off-policy evaluation.

Assignment is stable per customer: a keyed hash of the customer id puts each
customer at one point of [0, 1); the control group takes the first ``control_share``
of it and the policies the rest, in the order given. Pure.
"""

from __future__ import annotations

import hashlib
import math
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

Tier = Literal["best", "average", "worst"]


class Policy(BaseModel):
    model_config = ConfigDict(extra="forbid")

    policy_id: str = Field(pattern=r"^[A-Za-z0-9][A-Za-z0-9_.:-]{0,63}$")
    share: float = Field(ge=0, le=1, description="Share of all customers assigned to it")
    description: str = Field(default="", max_length=500)
    learner: Literal["contextual", "offer_rates"] = Field(
        default="contextual",
        description="contextual: the shared response model on the customer's features; "
                    "offer_rates: one acceptance rate per offer, the same for everyone")
    epsilon: float = Field(default=0.05, ge=0, le=1, description=(
        "Share of decisions whose last slot goes to a uniformly drawn eligible offer"))
    explore_pool: int = Field(default=16, ge=1, le=1000, description=(
        "How many ranked candidates beyond the first limit - 1 are considered: the last "
        "slot goes to the best of them, or when exploring to one of them uniformly"))
    optimism: float = Field(default=2.0, ge=0, le=5, description=(
        "Rank on propensity + optimism x its standard deviation: what is little known "
        "gets tried"))
    priority_weight: float = Field(default=1.0, ge=0, le=10, description=(
        "Exponent on each offer's business priority (0: ignore priorities)"))
    tier_weights: dict[Tier, float] = Field(default_factory=dict, description=(
        "Multiplier on the ranking score by the customer's value tier (default 1)"))
    context_weights: dict[str, float] = Field(default_factory=dict, description=(
        "'key=value' of the request context -> multiplier on every offer's score, "
        "'key=value@offer_id' for one offer"))
    clv_weight: float = Field(default=0.0, ge=0, le=10, description=(
        "How much more the business will spend on a customer worth more: the score is "
        "multiplied by 1 + clv_weight x min(1, expected value over 90 days / "
        "clv_reference)"))
    clv_reference: float = Field(default=100.0, gt=0, le=1e9)
    spike_boost: float = Field(default=1.25, ge=0, le=10, description=(
        "Multiplier for an offer whose category has an active demand spike"))
    objective: Literal["uplift", "acceptance"] = Field(default="uplift", description=(
        "uplift: rank marketing offers on incremental expected profit (P(buy | offer) x "
        "margin with it - P(buy | no offer) x margin without it - cost, learnt from "
        "attributed orders against holdouts); acceptance: on propensity x value - cost"))
    uplift_optimism: float = Field(default=0.15, ge=0, le=5, description=(
        "Under the uplift objective, rank on incremental profit + uplift_optimism x its "
        "standard deviation (in money: smaller than the acceptance optimism)"))
    uplift_prior_windows: int = Field(default=50, ge=0, le=100_000, description=(
        "How many closed attribution windows of an offer weigh as much as the catalog's "
        "own belief (propensity x value) in its incremental profit (0: uplift alone)"))
    holdout_share: float = Field(default=0.05, ge=0, le=0.5, description=(
        "Chance that an offer this policy would make is withheld (logged), so every "
        "offer has its own counterfactual; an offer's own holdout_share overrides it"))

    @model_validator(mode="after")
    def _weights(self) -> Policy:
        for name, w in [*self.tier_weights.items(), *self.context_weights.items()]:
            if not math.isfinite(w) or w < 0:
                raise ValueError(f"weight {name!r} must be a finite number >= 0")
        return self


class PolicyConfig(BaseModel):
    model_config = ConfigDict(extra="forbid")

    control_share: float = Field(default=0.0, ge=0, le=0.5, description=(
        "Share of customers held out: their decisions make no action"))
    policies: list[Policy] = Field(min_length=1, max_length=20)
    salt: str = Field(default="rapport", min_length=1, max_length=64, description=(
        "Changing it reshuffles who is assigned where"))
    version: int = 0

    @model_validator(mode="after")
    def _split(self) -> PolicyConfig:
        ids = [p.policy_id for p in self.policies]
        if len(set(ids)) != len(ids):
            raise ValueError("policy_id must be unique")
        total = self.control_share + sum(p.share for p in self.policies)
        if abs(total - 1.0) > 1e-6:
            raise ValueError(f"control_share and the policies' shares must add up to 1 "
                             f"(they add up to {total:.6g})")
        return self

    def policy(self, policy_id: str) -> Policy | None:
        return next((p for p in self.policies if p.policy_id == policy_id), None)


DEFAULT = PolicyConfig(policies=[Policy(policy_id="default", share=1.0)])


def point(salt: str, customer_id: str) -> float:
    """The customer's stable point in [0, 1)."""
    digest = hashlib.sha256(f"{salt}\x00{customer_id}".encode()).digest()
    return int.from_bytes(digest[:8], "big") / 2.0 ** 64


def assign(config: PolicyConfig, customer_id: str) -> Policy | None:
    """The customer's policy, or None for the control group."""
    at = point(config.salt, customer_id)
    if at < config.control_share:
        return None
    edge = config.control_share
    for policy in config.policies:
        edge += policy.share
        if at < edge:
            return policy
    return config.policies[-1]  # rounding at the very top of [0, 1)
