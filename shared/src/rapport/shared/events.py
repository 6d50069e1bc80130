"""The canonical, versioned records that travel on Rapport's topics.

Ingest turns every channel's message into a :class:`Touchpoint`; every
downstream consumer reads only this schema. Bump ``SCHEMA_VERSION`` (and keep
reading the old one) when a field changes meaning.
"""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum
from typing import Any, Literal

import orjson
from pydantic import AwareDatetime, BaseModel, ConfigDict, Field

SCHEMA_VERSION = 1


class MessageType(StrEnum):
    TRACK = "track"
    IDENTIFY = "identify"
    PAGE = "page"
    SCREEN = "screen"
    GROUP = "group"
    ALIAS = "alias"


class Channel(StrEnum):
    WEB = "web"
    MOBILE = "mobile"
    EMAIL = "email"
    CALL_CENTER = "call_center"
    STORE = "store"
    CHAT = "chat"
    SOCIAL = "social"
    PARTNER = "partner"
    OTHER = "other"


class Touchpoint(BaseModel):
    """One validated customer touchpoint, as every downstream service sees it."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    schema_version: Literal[1] = SCHEMA_VERSION
    message_id: str = Field(min_length=1, max_length=100)
    source: str
    type: MessageType
    event: str | None = None
    name: str | None = None
    category: str | None = None
    """Page or screen category."""
    user_id: str | None = None
    anonymous_id: str | None = None
    previous_id: str | None = None
    group_id: str | None = None
    channel: Channel
    timestamp: AwareDatetime
    """Event time, corrected for the sender's clock skew."""
    received_at: AwareDatetime
    sent_at: AwareDatetime | None = None
    properties: dict[str, Any] = Field(default_factory=dict)
    traits: dict[str, Any] = Field(default_factory=dict)
    context: dict[str, Any] = Field(default_factory=dict)

    @property
    def customer_key(self) -> str:
        """The identifier the touchpoint is keyed (and partitioned) by."""
        key = self.user_id or self.anonymous_id
        assert key is not None, "validated touchpoints always carry an identity"
        return key

    def to_bytes(self) -> bytes:
        """JSON without the absent fields (orjson directly: this is ingest's hot path)."""
        return orjson.dumps({k: v for k, v in self.__dict__.items() if v is not None},
                            option=orjson.OPT_UTC_Z)

    @classmethod
    def from_bytes(cls, raw: bytes) -> Touchpoint:
        return cls.model_validate_json(raw)


class OutcomeKind(StrEnum):
    VIEWED = "viewed"
    ACCEPTED = "accepted"
    REJECTED = "rejected"
    IGNORED = "ignored"


class OfferOutcome(BaseModel):
    """What a customer did with one action of one decision."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    schema_version: Literal[1] = SCHEMA_VERSION
    decision_id: str
    action_id: str
    offer_id: str
    customer_id: str
    outcome: OutcomeKind
    channel: Channel
    occurred_at: datetime

    def to_bytes(self) -> bytes:
        return orjson.dumps(self.model_dump(mode="json"))

    @classmethod
    def from_bytes(cls, raw: bytes) -> OfferOutcome:
        return cls.model_validate_json(raw)


class LoggedCandidate(BaseModel):
    """One eligible offer of a logged decision, as the policy saw it."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    offer_id: str
    value: float
    cost: float
    propensity: float
    """The response model's predicted chance of acceptance."""
    spread: float = 0.0
    """Its standard deviation (what optimistic ranking adds to it)."""
    priority: float = 1.0
    probability: float
    """The policy's exact chance of making it (at any rank)."""
    made: bool
    allowed: bool = True
    """Whether the contact limits allowed it (a capped offer could not be made)."""
    action_id: str | None = None
    held_out: bool = False
    """The policy would have made it, and it was withheld by the offer's random holdout
    (its counterfactual: ``probability`` is then the chance it had of being made)."""
    uplift: float | None = None
    """The uplift model's incremental profit for it at decision time (for the Qini)."""


class DecisionLogged(BaseModel):
    """One decision on the decision log: what off-policy evaluation, the reports and
    attribution read. The customer appears only by keyed fingerprint."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    schema_version: Literal[1] = SCHEMA_VERSION
    decision_id: str
    decided_at: datetime
    customer: str
    """Keyed fingerprint of the customer id (``Fingerprints.profile``)."""
    policy_id: str
    group: Literal["treatment", "control"]
    channel: Channel
    placement: str | None = None
    model_version: str | None = None
    segment: str | None = None
    tier: str | None = None
    limit: int = 1
    personalised: bool = False
    features: tuple[float, ...] | None = None
    """What the response model saw (behavioural descriptors, no identifiers)."""
    clv_90d: float | None = None
    candidates: tuple[LoggedCandidate, ...] = ()

    def to_bytes(self) -> bytes:
        return orjson.dumps(self.model_dump(mode="json"))

    @classmethod
    def from_bytes(cls, raw: bytes) -> DecisionLogged:
        return cls.model_validate_json(raw)


class OrderFact(BaseModel):
    """One order or refund as the profile service folded it (a resend is not folded
    twice, but the fact may be delivered twice: ``message_id`` is the once-key)."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    schema_version: Literal[1] = SCHEMA_VERSION
    kind: Literal["order", "refund"]
    customer: str
    """Keyed fingerprint of the profile id (``Fingerprints.profile``)."""
    message_id: str
    """Keyed fingerprint of the touchpoint's message id."""
    order_id: str | None = None
    """Keyed fingerprint of the order id (a refund names the order it refunds)."""
    occurred_at: datetime
    revenue: float = 0.0
    """For an order: Segment's ``revenue``, else ``total`` less ``discount``; for a
    refund: its ``total``."""
    discount: float = 0.0
    costed_revenue: float = 0.0
    """The part of the order's lines sent with a ``cost``, at their prices..."""
    cost: float = 0.0
    """...and what those lines cost: the rest is costed at the configured margin rate."""

    def margin(self, default_margin_rate: float) -> float:
        """What the order left the business: its revenue (after the discount) less the
        cost of goods: the lines' own costs where sent, the rest of the list price at
        the default margin rate. A refund takes back its total's margin at that rate
        (the goods come back; the margin on them does not)."""
        if self.kind == "refund":
            return -self.revenue * default_margin_rate
        uncosted = max(self.revenue + self.discount - self.costed_revenue, 0.0)
        return self.revenue - self.cost - uncosted * (1.0 - default_margin_rate)

    def to_bytes(self) -> bytes:
        return orjson.dumps(self.model_dump(mode="json"))

    @classmethod
    def from_bytes(cls, raw: bytes) -> OrderFact:
        return cls.model_validate_json(raw)


class StepKind(StrEnum):
    TOUCHPOINT = "touchpoint"
    MERGE_OUT = "merge_out"
    MERGE_IN = "merge_in"


class ProfileStep(BaseModel):
    """One step of ``rapport.touchpoints.resolved.v1``, on the partition owning
    ``profile_id``; records there are JSON arrays of steps (:func:`step_records`).

    ``touchpoint``: fold it into the profile. ``merge_out``: this profile turned out
    to be the same person as ``into``; hand its state over and forward what comes
    later. ``merge_in``: fold the handed-over ``absorbed`` state (a profile JSON and
    its timeline) into this profile.
    """

    model_config = ConfigDict(frozen=True)

    schema_version: Literal[1] = SCHEMA_VERSION
    kind: StepKind
    profile_id: str
    touchpoint: Touchpoint | None = None
    into: str | None = None
    absorbed_id: str | None = None
    absorbed: dict[str, Any] | None = None
    timeline: list[tuple[float, str]] | None = None
    cause: dict[str, Any] | None = None
    origin: int | None = None
    """The touchpoints partition a touchpoint step was resolved from: its order there is
    its event-time order, which the re-keyed partition, fed by many, does not keep."""

    def to_bytes(self, touchpoint_json: bytes | None = None) -> bytes:
        """JSON of the step; ``touchpoint_json`` (the touchpoint as read from Kafka) is
        embedded as it is instead of being encoded again."""
        body = {k: v for k, v in self.__dict__.items() if v is not None}
        if touchpoint_json is not None:
            body["touchpoint"] = orjson.Fragment(touchpoint_json)
        elif self.touchpoint is not None:
            body["touchpoint"] = orjson.loads(self.touchpoint.to_bytes())
        return orjson.dumps(body, option=orjson.OPT_UTC_Z)

    @classmethod
    def from_bytes(cls, raw: bytes) -> ProfileStep:
        return cls.model_validate_json(raw)


STEP_RECORD_BYTES = 256 * 1024
"""Largest record of steps written (well under Kafka's default 1 MB message limit)."""


def step_records(encoded: list[bytes], limit: int = STEP_RECORD_BYTES) -> list[bytes]:
    """Pack encoded steps, in order, into as few JSON-array records as fit ``limit``.

    The re-keyed stream carries one record per partition and micro-batch rather than
    one per step, so its consumer pays the stream framework's per-record cost once
    per batch.
    """
    records: list[bytes] = []
    chunk: list[bytes] = []
    size = 2
    for step in encoded:
        if chunk and size + len(step) + 1 > limit:
            records.append(b"[" + b",".join(chunk) + b"]")
            chunk, size = [], 2
        chunk.append(step)
        size += len(step) + 1
    if chunk:
        records.append(b"[" + b",".join(chunk) + b"]")
    return records
