"""Settings common to every Rapport process.

Each service subclasses :class:`CommonSettings` once and builds it in its
``app`` module; nothing reads the environment at import time.
"""

from __future__ import annotations

from pathlib import Path

from pydantic import Field
from pydantic_settings import BaseSettings, SettingsConfigDict


class CommonSettings(BaseSettings):
    """Connection and security settings shared by all services (``RAPPORT_*``)."""

    model_config = SettingsConfigDict(env_prefix="RAPPORT_", extra="ignore")

    kafka_bootstrap: str = "127.0.0.1:9092"
    redis_url: str = "redis://127.0.0.1:6390/0"
    dev_keys: bool = Field(
        default=False,
        description="Enable the well-known development keys (local stack only).",
    )
    api_keys: dict[str, str] = Field(
        default_factory=dict, description='JSON object {"<api key>": "<role>"}.'
    )
    api_keys_file: Path | None = Field(
        default=None, description="JSON file with the same shape as RAPPORT_API_KEYS."
    )
    log_level: str = "INFO"
    log_format: str = Field(default="json", pattern="^(json|console)$")
    kafka_timeout_s: float = Field(default=10.0, gt=0)
    host: str = "127.0.0.1"
