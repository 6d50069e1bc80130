"""Scoring service settings (``RAPPORT_*``)."""

from __future__ import annotations

from rapport.shared.settings import CommonSettings


class ScoringSettings(CommonSettings):
    scoring_port: int = 8003
    scoring_group_id: str = "rapport-scoring"
    cost_per_service_contact: float = 5.0
    default_order_value: float = 50.0
