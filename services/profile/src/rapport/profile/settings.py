"""Profile service settings (``RAPPORT_*``)."""

from __future__ import annotations

import tempfile
from pathlib import Path

from pydantic import Field

from rapport.shared import topics
from rapport.shared.settings import CommonSettings


class ProfileSettings(CommonSettings):
    profile_port: int = 8002
    profile_group_id: str = Field(default="rapport-profile",
                                  description="Kafka consumer group of the profile processors")
    profile_data_dir: Path = Field(
        default=Path(tempfile.gettempdir()) / "rapport-profile",
        description="Scratch folder of the stream processor (state lives in Redis, not here)")
    touchpoints_topic: str = Field(default=topics.TOUCHPOINTS.name,
                                   description="Where ingest writes touchpoints")
    resolved_topic: str = Field(default=topics.RESOLVED.name,
                                description="Re-keyed stream between the two stages")
    identity_join_limit: int = Field(
        default=5, ge=1, description="How many profiles one identifier value (email, phone, "
                                     "loyalty id, device) may join before links are refused")
    segments_file: Path | None = Field(default=None,
                                       description="JSON list of segment definitions")
    session_timeout_s: float = Field(
        default=30, ge=6, description="How long a silent (crashed) worker keeps its "
                                      "partitions before the group hands them over")
    timeline_length: int = Field(default=100, ge=1, le=1000)
