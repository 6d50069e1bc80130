"""Scoring service settings (``RAPPORT_*``)."""

from __future__ import annotations

from pydantic import Field

from rapport.shared.settings import ScoredSettings


class ScoringSettings(ScoredSettings):
    scoring_port: int = 8003
    scoring_group_id: str = "rapport-scoring"
    refit_interval_s: float = Field(default=6 * 3600.0, gt=0, description=(
        "How often the lifetime-value models are refitted on the whole population"))
    refit_first_delay_s: float = Field(default=300.0, ge=0)
