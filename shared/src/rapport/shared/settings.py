"""Settings common to every Rapport process.

Each service subclasses :class:`CommonSettings` once and builds it in its
``app`` module; nothing reads the environment at import time.
"""

from __future__ import annotations

from pathlib import Path

from pydantic import Field, SecretStr
from pydantic_settings import BaseSettings, SettingsConfigDict

from .privacy import DEV_PRIVACY_SECRET, Fingerprints


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
    privacy_secret: SecretStr | None = Field(
        default=None, description="Secret (16+ bytes) keying the fingerprints of personal "
                                  "identifiers (erasure markers, per-person keys); the same "
                                  "in every service. Required unless RAPPORT_DEV_KEYS=1.")

    def fingerprints(self) -> Fingerprints:
        """The HMAC fingerprints every service names per-person keys and markers by."""
        if self.privacy_secret is not None:
            return Fingerprints(self.privacy_secret.get_secret_value())
        if self.dev_keys:
            return Fingerprints(DEV_PRIVACY_SECRET)
        raise ValueError("RAPPORT_PRIVACY_SECRET is not set (only RAPPORT_DEV_KEYS=1 has a "
                         "development default)")
