"""Keyed fingerprints of personal identifiers: what erasure markers, over-merge
counters and other per-person keys are named by, so that no Redis key or Kafka
record of those kinds carries a raw identifier, and none can be reversed by
hashing guesses without the configured secret (HMAC-SHA256)."""

from __future__ import annotations

import hashlib
import hmac

DEV_PRIVACY_SECRET = "dev-privacy-secret"
"""The local development secret (enabled by ``RAPPORT_DEV_KEYS=1`` only)."""


class Fingerprints:
    """HMAC-SHA256 of ``kind`` and ``value`` under one secret, hex, 32 characters."""

    def __init__(self, secret: str | bytes) -> None:
        raw = secret.encode() if isinstance(secret, str) else secret
        if len(raw) < 16:
            raise ValueError("the privacy secret must be at least 16 bytes")
        self._secret = raw

    def of(self, kind: str, value: str) -> str:
        # A unit separator between the parts: no (kind, value) pair encodes like another.
        message = f"{kind}\x1f{value}".encode()
        return hmac.new(self._secret, message, hashlib.sha256).hexdigest()[:32]

    def profile(self, profile_id: str) -> str:
        return self.of("profile", profile_id)

    def subkey(self, purpose: str) -> bytes:
        """A secret derived for another use (never the fingerprint secret itself)."""
        return hmac.new(self._secret, f"rapport:{purpose}".encode(), hashlib.sha256).digest()
