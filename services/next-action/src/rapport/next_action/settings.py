"""Next-action service settings (``RAPPORT_*``)."""

from __future__ import annotations

from pydantic import Field, field_validator

from rapport.shared.settings import ScoredSettings

from .limits import DEFAULT_RULES, ContactRule


class NextActionSettings(ScoredSettings):
    next_action_port: int = 8004
    decision_ttl_s: int = Field(default=90 * 86400, gt=0,
                                description="How long decisions stay available for outcomes")
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
