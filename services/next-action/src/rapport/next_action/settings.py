"""Next-action service settings (``RAPPORT_*``)."""

from __future__ import annotations

from typing import Literal

from pydantic import Field, field_validator

from rapport.shared.settings import ScoredSettings

from .limits import DEFAULT_RULES, ContactRule
from .suitability import SuitabilityRules


class NextActionSettings(ScoredSettings):
    next_action_port: int = 8004
    next_action_workers: int = Field(default=1, ge=1, le=64, description=(
        "HTTP worker processes (each with its own caches and learner consumer, in one "
        "consumer group; Prometheus sums them)"))
    decision_ttl_s: int = Field(default=14 * 86400, gt=0, description=(
        "How long decisions (with their trace, ~7 KB each for 200 offers) stay in Redis "
        "for outcomes and GET /v1/decisions: twice the outcome window; the decision log "
        "topic keeps them as long as its retention"))
    outcome_window_s: float = Field(default=7 * 86400, gt=0, description=(
        "A made offer with no final outcome this long after the decision counts as ignored"))
    ignored_sweep_interval_s: float = Field(default=30.0, gt=0)
    learner_group_id: str = "rapport-next-action-learner"
    attribution_group_id: str = "rapport-next-action-attribution"
    attribution_window_s: float = Field(default=7 * 86400, gt=0, description=(
        "An order counts as the response to the customer's most recent decision at most "
        "this long before it (offer made, held out or control alike)"))
    attribution_grace_s: float = Field(default=600.0, ge=0, description=(
        "How long past its window a decision's window stays open for orders still on "
        "their way through the pipeline; then it is closed and learnt from"))
    attribution_close_interval_s: float = Field(default=5.0, gt=0)
    uplift_learner: Literal["two_model", "transformed_outcome"] = Field(
        default="two_model", description=(
            "The uplift model arbitration uses (both are documented and compared in the "
            "README; the other can be evaluated offline with rapport eval-uplift)"))
    cache_s: float = Field(default=1.0, ge=0, description=(
        "How long the catalog, the policies and the response model are reused before "
        "being read again (a PUT on this replica takes effect at once)"))
    customer_budget_s: float = Field(default=0.05, gt=0, description=(
        "Time allowed to read the customer and their scores; past it the decision is "
        "made as for an unknown customer (the trace says so)"))
    contacts_budget_s: float = Field(default=0.05, gt=0, description=(
        "Time allowed for the contact limits; past it only offers no limit or contact "
        "policy applies to are made"))
    costly_offer_cost: float = Field(default=5.0, ge=0, description=(
        "Offers costing this much or more are not made to worst-tier customers"))
    full_price_min_rf: int = Field(default=4, ge=1, le=5, description=(
        "Recency and frequency scores from which a customer is likely to buy anyway"))
    full_price_min_p_alive: float = Field(default=0.8, ge=0, le=1)

    def suitability(self) -> SuitabilityRules:
        return SuitabilityRules(costly_cost=self.costly_offer_cost,
                                full_price_min_rf=self.full_price_min_rf,
                                full_price_min_p_alive=self.full_price_min_p_alive)
    contact_rules: list[ContactRule] = Field(
        default_factory=lambda: list(DEFAULT_RULES), max_length=50,
        description='The contact policy, per person across offers (JSON list, e.g. '
                    '[{"name": "email-weekly", "channel": "email", "max": 2, "days": 7}]; '
                    'channel null: every channel, "sms": SMS only). Default: at most 2 '
                    'marketing emails and 2 marketing SMS in 7 days; [] for none.')
    budget_ahead: float = Field(
        default=1 / 24, ge=0, le=1,
        description="How far ahead of an even spread over the UTC day a daily budget may "
                    "run, as a share of the day (1/24: an hour's worth)")

    @field_validator("contact_rules")
    @classmethod
    def _unique_names(cls, rules: list[ContactRule]) -> list[ContactRule]:
        names = [r.name for r in rules]
        if len(set(names)) != len(names):
            raise ValueError("contact rule names must be unique")
        return rules
