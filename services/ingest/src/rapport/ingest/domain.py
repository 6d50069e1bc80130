"""Segment-format messages to canonical touchpoints: pure validation and
normalisation, no I/O. Each message is judged on its own, so one bad message
never fails its batch."""

from __future__ import annotations

import re
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import orjson
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from rapport.shared.events import Channel, MessageType, Touchpoint

from .settings import Source

EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
MAX_DEPTH = 32
_CHANNELS = {c.value for c in Channel}
_CONTROL = re.compile(r"[\x00-\x1f\x7f]")


def too_deep(value: Any, budget: int = MAX_DEPTH) -> bool:
    """Whether a JSON value nests deeper than ``budget`` levels of objects and arrays."""
    if budget <= 0:
        return True
    children = value.values() if type(value) is dict else value
    for child in children:
        if type(child) in (dict, list) and too_deep(child, budget - 1):
            return True
    return False


def _text(v: Any, what: str, max_len: int) -> Any:
    if isinstance(v, str):
        if not v.strip() or len(v) > max_len:
            raise ValueError(f"must be a non-empty string of at most {max_len} characters")
        if _CONTROL.search(v):
            raise ValueError(f"{what} must not contain control characters")
    return v


class SegmentMessage(BaseModel):
    """One message in Segment's HTTP Tracking API format (the fields Rapport reads)."""

    model_config = ConfigDict(extra="allow")

    type: MessageType
    userId: str | None = None
    anonymousId: str | None = None
    messageId: str | None = Field(default=None, min_length=1, max_length=99)
    timestamp: datetime | None = None
    originalTimestamp: datetime | None = None
    sentAt: datetime | None = None
    event: str | None = Field(default=None, max_length=200)
    name: str | None = Field(default=None, max_length=200)
    category: str | None = Field(default=None, max_length=200)
    previousId: str | None = None
    groupId: str | None = None
    properties: dict[str, Any] = Field(default_factory=dict)
    traits: dict[str, Any] = Field(default_factory=dict)
    context: dict[str, Any] = Field(default_factory=dict)

    @field_validator("userId", "anonymousId", "previousId", "groupId", mode="before")
    @classmethod
    def _ids_as_text(cls, v: Any) -> Any:
        if isinstance(v, bool):
            raise ValueError("must be a string")
        if isinstance(v, int):
            return str(v)
        return _text(v, "identifiers", 256)

    @field_validator("event", "name", "category", "messageId", mode="before")
    @classmethod
    def _names_as_text(cls, v: Any) -> Any:
        return _text(v, "names", 200)


@dataclass(frozen=True)
class Rejection:
    index: int
    message_id: str | None
    errors: list[str]
    reason: str = "invalid"
    """A short, fixed code for metrics: what kind of problem the first error is."""

    def as_json(self) -> dict[str, Any]:
        return {"index": self.index, "messageId": self.message_id, "errors": self.errors}


def _as_utc(ts: datetime) -> datetime:
    return ts.replace(tzinfo=UTC) if ts.tzinfo is None else ts.astimezone(UTC)


def event_time(msg: SegmentMessage, batch_sent_at: datetime | None,
               received_at: datetime) -> datetime:
    """Segment's clock-skew correction: ``receivedAt - (sentAt - originalTimestamp)``."""
    original = msg.originalTimestamp or msg.timestamp
    sent = msg.sentAt or batch_sent_at
    if original is None:
        return received_at
    original = _as_utc(original)
    if sent is None:
        return original
    return received_at - (_as_utc(sent) - original)


def _readable(err: ValidationError) -> list[str]:
    out = []
    for e in err.errors():
        where = ".".join(str(p) for p in e["loc"]) or "message"
        out.append(f"{where}: {e['msg']}")
    return out


def normalize(raw: Any, *, index: int, source: Source, received_at: datetime,
              batch_context: dict[str, Any] | None = None,
              batch_sent_at: datetime | None = None,
              max_message_bytes: int = 32 * 1024,
              max_future_skew: timedelta = timedelta(days=1)) -> Touchpoint | Rejection:
    """Validate one Segment message and turn it into a canonical touchpoint."""
    message_id = raw.get("messageId") if isinstance(raw, dict) else None
    message_id = message_id if isinstance(message_id, str) else None
    if not isinstance(raw, dict):
        return Rejection(index, None, ["message: must be a JSON object"], "not_an_object")
    if len(orjson.dumps(raw)) > max_message_bytes:
        return Rejection(index, message_id, [f"message: larger than {max_message_bytes} bytes"],
                         "too_large")
    if too_deep(raw, MAX_DEPTH):
        return Rejection(index, message_id, [f"message: nested deeper than {MAX_DEPTH} levels"],
                         "too_deep")
    try:
        msg = SegmentMessage.model_validate(raw)
    except ValidationError as err:
        first = err.errors()[0]["loc"][0] if err.errors()[0]["loc"] else ""
        reason = {"type": "unknown_type", "timestamp": "invalid_timestamp",
                  "originalTimestamp": "invalid_timestamp", "sentAt": "invalid_timestamp"
                  }.get(str(first), "invalid_field")
        return Rejection(index, message_id, _readable(err), reason)

    errors: list[tuple[str, str]] = []
    if not (msg.userId or msg.anonymousId):
        errors.append(("missing_identity", "userId or anonymousId is required"))
    if msg.type is MessageType.TRACK and not msg.event:
        errors.append(("missing_event", "event: required for track"))
    if msg.type is MessageType.ALIAS and not msg.previousId:
        errors.append(("missing_previous_id", "previousId: required for alias"))
    try:
        ts = event_time(msg, batch_sent_at, received_at)
    except OverflowError:
        ts = None
    if ts is None or ts < EPOCH:
        errors.append(("invalid_timestamp", "timestamp: before 1970 or out of range"))
    elif ts > received_at + max_future_skew:
        errors.append(("future_timestamp", "timestamp: in the future"))
    if errors or ts is None:
        return Rejection(index, message_id, [e for _, e in errors], errors[0][0])

    context = {**(batch_context or {}), **msg.context}
    traits = msg.traits or (context.get("traits") if isinstance(context.get("traits"), dict)
                            else {})
    channel_hint = context.get("channel")
    channel = Channel(channel_hint) if channel_hint in _CHANNELS else source.channel
    # Every field was validated above: build without validating again (hot path).
    return Touchpoint.model_construct(
        message_id=msg.messageId or str(uuid.uuid4()),
        source=source.source,
        type=msg.type,
        event=msg.event,
        name=msg.name,
        category=msg.category,
        user_id=msg.userId,
        anonymous_id=msg.anonymousId,
        previous_id=msg.previousId,
        group_id=msg.groupId,
        channel=channel,
        timestamp=ts,
        received_at=received_at,
        sent_at=_as_utc(msg.sentAt or batch_sent_at) if (msg.sentAt or batch_sent_at) else None,
        properties=msg.properties,
        traits=traits,
        context=context,
    )
