"""Settings common to every Rapport process.

Each service subclasses :class:`CommonSettings` once and builds it in its
``app`` module; nothing reads the environment at import time. Building the
settings is also where a service refuses insecure keys (see :mod:`.keypolicy`),
so no service starts with a placeholder or development key by mistake.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Self

from pydantic import Field, SecretStr, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from . import keypolicy
from .auth import read_keys_file, roles_of
from .privacy import DEV_PRIVACY_SECRET, Fingerprints

if TYPE_CHECKING:
    from .scores.compute import ScoringPolicy

DEFAULT_MAX_BODY_BYTES = 1024 * 1024


class CommonSettings(BaseSettings):
    """Connection and security settings shared by all services (``RAPPORT_*``)."""

    # Validation errors never echo their input: it holds keys and secrets.
    model_config = SettingsConfigDict(env_prefix="RAPPORT_", extra="ignore",
                                      hide_input_in_errors=True)

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
    max_body_bytes: int = Field(
        default=DEFAULT_MAX_BODY_BYTES, gt=0,
        description="Largest request body accepted (413 above it, before authentication)")

    @model_validator(mode="after")
    def _refuse_insecure_keys(self) -> Self:
        """Without RAPPORT_DEV_KEYS=1: a privacy secret is required, and no key may be a
        placeholder, a development key or too weak (errors name the setting only)."""
        roles = roles_of("RAPPORT_API_KEYS", self.api_keys)
        from_file = read_keys_file(self.api_keys_file) if self.api_keys_file else {}
        if self.dev_keys:
            return self
        if self.privacy_secret is None:
            raise keypolicy.InsecureKey(
                "RAPPORT_PRIVACY_SECRET is not set: give every service the same random secret "
                "(e.g. `openssl rand -hex 32`), or set RAPPORT_DEV_KEYS=1 for local "
                "development only")
        keypolicy.check("RAPPORT_PRIVACY_SECRET",
                        [("the secret", self.privacy_secret.get_secret_value())], header=False)
        keypolicy.check("RAPPORT_API_KEYS", ((f"the {r.value!r} key", k) for k, r in roles.items()))
        keypolicy.check("RAPPORT_API_KEYS_FILE",
                        ((f"the {r.value!r} key", k) for k, r in from_file.items()))
        return self

    def fingerprints(self) -> Fingerprints:
        """The HMAC fingerprints every service names per-person keys and markers by."""
        if self.privacy_secret is not None:
            return Fingerprints(self.privacy_secret.get_secret_value())
        if self.dev_keys:
            return Fingerprints(DEV_PRIVACY_SECRET)
        raise ValueError("RAPPORT_PRIVACY_SECRET is not set (only RAPPORT_DEV_KEYS=1 has a "
                         "development default)")


class ScoredSettings(CommonSettings):
    """The scoring parameters, for every service that scores customers (scoring and
    next-action read the same ``RAPPORT_`` names, so both give the same numbers)."""

    default_margin_rate: float = Field(default=0.30, ge=0, le=1,
                                       description="Margin on sales whose cost is unknown")
    cost_per_call: float = Field(default=4.0, ge=0)
    cost_per_ticket: float = Field(default=6.0, ge=0)
    cost_per_complaint: float = Field(default=15.0, ge=0)
    cost_per_offer: float = Field(default=0.10, ge=0, description="Cost of an offer seen")
    best_share: float = Field(default=0.20, gt=0, lt=1, description="Buyers in the best tier")
    worst_share: float = Field(default=0.20, gt=0, lt=1, description="Buyers in the worst tier")

    def scoring_policy(self) -> ScoringPolicy:
        from .scores.compute import ScoringPolicy
        from .scores.profit import ProfitPolicy
        return ScoringPolicy(
            profit=ProfitPolicy(default_margin_rate=self.default_margin_rate,
                                cost_per_call=self.cost_per_call,
                                cost_per_ticket=self.cost_per_ticket,
                                cost_per_complaint=self.cost_per_complaint,
                                cost_per_offer=self.cost_per_offer),
            best_share=self.best_share, worst_share=self.worst_share)
