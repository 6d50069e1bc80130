"""Next-action service settings (``RAPPORT_*``)."""

from __future__ import annotations

from pydantic import Field

from rapport.shared.settings import ScoredSettings


class NextActionSettings(ScoredSettings):
    next_action_port: int = 8004
    decision_ttl_s: int = Field(default=90 * 86400, gt=0,
                                description="How long decisions stay available for outcomes")
