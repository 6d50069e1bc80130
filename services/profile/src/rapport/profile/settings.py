"""Profile service settings (``RAPPORT_*``)."""

from __future__ import annotations

import tempfile
from pathlib import Path

from pydantic import Field

from rapport.shared.settings import CommonSettings


class ProfileSettings(CommonSettings):
    profile_port: int = 8002
    profile_group_id: str = Field(default="rapport-profile",
                                  description="Kafka consumer group of the profile processors")
    profile_data_dir: Path = Field(
        default=Path(tempfile.gettempdir()) / "rapport-profile",
        description="Scratch folder of the stream processor (state lives in Redis, not here)")
    timeline_length: int = Field(default=100, ge=1, le=1000)
