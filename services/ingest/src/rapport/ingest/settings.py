"""Ingest settings (``RAPPORT_*``)."""

from __future__ import annotations

from typing import Self

from pydantic import BaseModel, Field, model_validator

from rapport.shared import keypolicy
from rapport.shared.events import Channel
from rapport.shared.settings import CommonSettings


class Source(BaseModel):
    """Where a write key's messages come from, and their channel by default."""

    source: str
    channel: Channel = Channel.WEB


DEV_WRITE_KEYS = {"dev-write-key": Source(source="dev", channel=Channel.WEB)}


class IngestSettings(CommonSettings):
    ingest_port: int = 8001
    ingest_workers: int = Field(default=1, ge=1, le=64,
                                description="HTTP worker processes (Prometheus sums them)")
    write_keys: dict[str, Source] = Field(
        default_factory=dict,
        description='JSON {"<write key>": {"source": "...", "channel": "web"}}',
    )
    ack_timeout_s: float = Field(default=10.0, gt=0,
                                 description="Longest wait for Kafka's acknowledgement before 503")
    kafka_linger_ms: int = Field(default=5, ge=0, le=1000)
    kafka_compression: str | None = Field(default="lz4", pattern="^(gzip|lz4|snappy|zstd)$")
    max_request_bytes: int = 500 * 1024
    max_message_bytes: int = 32 * 1024
    max_batch_messages: int = 2500
    dedup_shards: int = Field(default=4096, ge=1, le=1_048_576,
                              description="Hashes per source and day for messageId dedup; "
                                          "raise it above ~2M messages per source per day")
    dedup_stale_s: float = Field(default=30.0, gt=0,
                                 description="A claim older than this (crashed replica) is void")
    max_future_skew_s: float = Field(default=24 * 3600,
                                     description="Event times further in the future are rejected")

    @model_validator(mode="after")
    def _refuse_insecure_write_keys(self) -> Self:
        """Write keys follow the API keys' rules (placeholders, dev keys, weak keys refused)."""
        if not self.dev_keys:
            keypolicy.check("RAPPORT_WRITE_KEYS", ((f"the key of source {s.source!r}", key)
                                                   for key, s in self.write_keys.items()),
                            header=False)
        return self

    def sources(self) -> dict[str, Source]:
        keys = dict(DEV_WRITE_KEYS) if self.dev_keys else {}
        keys.update(self.write_keys)
        return keys
