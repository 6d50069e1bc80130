"""The customer profile as it is stored in Redis and published on
``rapport.profile-updates.v1``: the contract between the profile service
(its only writer) and scoring, next-action and agent screens (readers)."""

from __future__ import annotations

import zlib
from datetime import datetime

import orjson
from pydantic import BaseModel, ConfigDict, Field

from .purchases import PurchaseHistory

PROFILE_SCHEMA_VERSION = 1
MAX_SIGNALS = 100
SIGNAL_KINDS = ("complaint", "refund", "ticket", "unresolved_call")


class Identity(BaseModel):
    model_config = ConfigDict(frozen=True)

    type: str
    value: str


class ChannelActivity(BaseModel):
    count: int = 0
    last_seen: datetime | None = None


class Metrics(BaseModel):
    touchpoints: int = 0
    orders: int = 0
    units: int = 0
    revenue: float = 0.0
    margin: float = 0.0
    """Sum of (price - cost) x quantity over order lines whose cost is known."""
    margin_revenue: float = 0.0
    """Revenue of the order lines whose cost is known (margin rate = margin / this)."""
    returns: int = 0
    returned_value: float = 0.0
    discounts: float = 0.0
    service_contacts: int = 0
    calls: int = 0
    call_seconds: float = 0.0
    tickets: int = 0
    complaints: int = 0
    offers_viewed: int = 0
    emails_delivered: int = 0
    emails_opened: int = 0
    emails_clicked: int = 0
    unsubscribed_at: datetime | None = None
    nps_responses: int = 0
    nps_sum: float = 0.0
    last_nps: float | None = None
    last_nps_at: datetime | None = None
    first_seen: datetime | None = None
    last_seen: datetime | None = None
    last_order_at: datetime | None = None
    first_order_at: datetime | None = None


class Affinity(BaseModel):
    """Interest in a category: sum of event weights, each halved every half-life.

    Stored as its value at ``as_of`` (the latest event time seen), which makes it
    independent of the order events arrive in.
    """

    score: float = 0.0
    as_of: datetime | None = None


class Consent(BaseModel):
    value: bool
    at: datetime


class Rfm(BaseModel):
    recency_days: float | None
    frequency: int
    monetary: float


class CustomerProfile(BaseModel):
    model_config = ConfigDict(extra="ignore")

    schema_version: int = PROFILE_SCHEMA_VERSION
    customer_id: str
    identities: list[Identity] = Field(default_factory=list)
    traits: dict[str, object] = Field(default_factory=dict)
    trait_times: dict[str, datetime] = Field(
        default_factory=dict, description="Event time of each trait's value; older never wins")
    metrics: Metrics = Field(default_factory=Metrics)
    segments: list[str] = Field(default_factory=list)
    channels: dict[str, ChannelActivity] = Field(default_factory=dict)
    affinities: dict[str, Affinity] = Field(default_factory=dict)
    consents: dict[str, Consent] = Field(default_factory=dict)
    recent_message_ids: list[str] = Field(
        default_factory=list, description="Fingerprints of the latest touchpoints applied: "
                                          "a resent one is recognised and not counted again")
    purchases: PurchaseHistory = Field(
        default_factory=PurchaseHistory,
        description="Spend by purchase day: what the lifetime-value models count")
    signals: list[tuple[int, str]] = Field(
        default_factory=list,
        description="(UTC day, kind) of the latest service signals that precede leaving "
                    f"({', '.join(SIGNAL_KINDS)}), oldest first, at most {MAX_SIGNALS}")
    merged_from: list[str] = Field(
        default_factory=list, description="Profile ids found to be this same person")
    updated_at: datetime | None = None

    def rfm(self, now: datetime) -> Rfm:
        """Raw RFM values; recency is relative to ``now`` so it is computed on read."""
        last = self.metrics.last_order_at
        recency = None if last is None else max(0.0, (now - last).total_seconds() / 86400)
        return Rfm(
            recency_days=None if recency is None else round(recency, 3),
            frequency=self.metrics.orders,
            monetary=round(self.metrics.revenue, 2),
        )

    def add_signal(self, day: int, kind: str) -> None:
        """Record a signal (in place); the newest :data:`MAX_SIGNALS` stay, whatever the
        order they arrive in."""
        self.signals = sorted([*self.signals, (day, kind)])[-MAX_SIGNALS:]

    def to_bytes(self) -> bytes:
        """Plain JSON, every field: what the profile-updates topic carries."""
        return orjson.dumps(self.model_dump(mode="json"))

    def to_stored(self) -> bytes:
        """Compact form kept in Redis: defaults left out, then deflated (about a third)."""
        body = self.model_dump(mode="json", exclude_defaults=True)
        body["schema_version"] = self.schema_version
        return zlib.compress(orjson.dumps(body), 1)

    @classmethod
    def from_bytes(cls, raw: bytes | str) -> CustomerProfile:
        """Either form: plain JSON starts with ``{``, the stored form is a zlib stream."""
        if isinstance(raw, bytes) and raw[:1] != b"{":
            raw = zlib.decompress(raw)
        return cls.model_validate_json(raw)
