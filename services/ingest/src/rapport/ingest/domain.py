"""Segment-format messages to canonical touchpoints: pure validation and
normalisation, no I/O. Each message is judged on its own, so one bad message
never fails its batch; only a batch-level ``context`` that no message could carry
fails the request (:func:`read_batch_context`), before anything is published."""

from __future__ import annotations

import re
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from rapport.shared import identifiers
from rapport.shared.events import SCHEMA_VERSION, Channel, MessageType, Touchpoint
from rapport.shared.identifiers import InvalidIdentifier, clean

from . import vocabulary
from .settings import Source
from .shape import encoded_size, nests_deeper

EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
MAX_DEPTH = 32
"""Levels of objects and arrays in one message, the message itself included."""
MAX_BATCH_CONTEXT_BYTES = 8 * 1024
"""A batch-level ``context`` is copied into every message of the batch: capped so that
2500 copies stay about 20 MB of Kafka records, not 2500 times the request."""
MAX_ERRORS = 10
"""Errors listed per rejected message (the rest are counted in one more line)."""
_CHANNELS = {c.value for c in Channel}
_CONTROL = re.compile(r"[\x00-\x1f\x7f]")
_ID_FIELDS = ("userId", "anonymousId", "previousId", "groupId")


@dataclass(frozen=True)
class Caps:
    """The largest numbers the commerce and service events may carry (see
    :mod:`~rapport.ingest.vocabulary`): beyond them a value is a bug or an attack,
    and it would stay in every sum that profiles keep."""

    amount: float = 1e9
    """Any money amount: total, revenue, discount, and a line's price or cost."""
    quantity: float = 1e6
    """Units on one product line or one add to cart (and more than 0)."""
    products: int = 500
    """Lines in one order."""
    duration_s: float = 24 * 3600
    """One call."""
    nps_min: float = 0
    nps_max: float = 10


CAPS = Caps()
_RULES = vocabulary.event_rules(CAPS)


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

    @field_validator(*_ID_FIELDS, mode="before")
    @classmethod
    def _ids_cleaned(cls, v: Any) -> Any:
        """Ids are kept as every service looks them up (the shared rule): NFKC, trimmed."""
        if isinstance(v, bool):
            raise ValueError("must be a string")
        if isinstance(v, int):
            v = str(v)
        if not isinstance(v, str):
            return v  # None, or a type pydantic refuses with its own message
        try:
            return clean(v)
        except InvalidIdentifier as exc:
            raise ValueError(str(exc)) from None

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
        out.append(f"{where}: {e['msg'].removeprefix('Value error, ')}")
    return out


class InvalidBatch(ValueError):
    """The request as a whole cannot be taken (400), found before anything is published."""

    def __init__(self, code: str, message: str) -> None:
        super().__init__(message)
        self.code = code


@dataclass(frozen=True)
class BatchContext:
    """A batch-level ``context``, checked once, with its size in bytes as JSON."""

    values: dict[str, Any]
    size: int


def read_batch_context(value: Any, *, max_message_bytes: int = 32 * 1024,
                       ) -> BatchContext | None:
    """The batch's ``context``, or :class:`InvalidBatch` when it cannot be copied into the
    messages: not an object, deeper than a message's context may nest (it is each
    message's second level), or over :data:`MAX_BATCH_CONTEXT_BYTES`."""
    if value is None:
        return None
    if not isinstance(value, dict):
        raise InvalidBatch("invalid_context", "context: must be an object")
    if nests_deeper(value, MAX_DEPTH - 1):
        raise InvalidBatch("context_too_deep", f"context: nested deeper than {MAX_DEPTH - 1} "
                           "levels (it is copied into every message, at the second level)")
    size = encoded_size(value)
    if size is None:
        raise InvalidBatch("invalid_context", "context: not encodable as JSON")
    limit = min(MAX_BATCH_CONTEXT_BYTES, max_message_bytes)
    if size > limit:
        raise InvalidBatch("context_too_large", f"context: larger than {limit} bytes "
                           "(it is copied into every message)")
    return BatchContext(value, size) if value else None


def _shape(raw: dict[str, Any], index: int, message_id: str | None,
           batch: BatchContext | None, max_bytes: int) -> Rejection | None:
    """Depth first, without recursion: only a shallow value can be measured by orjson.
    The size counts the batch's context the message will carry."""
    if nests_deeper(raw, MAX_DEPTH):
        return Rejection(index, message_id, [f"message: nested deeper than {MAX_DEPTH} levels"],
                         "too_deep")
    size = encoded_size(raw)
    if size is None:
        return Rejection(index, message_id, ["message: not encodable as JSON"], "invalid_field")
    merged = ""
    if batch is not None and size + batch.size > max_bytes:
        own = raw.get("context")
        size = encoded_size({**raw, "context": {**batch.values,
                                                **(own if isinstance(own, dict) else {})}})
        merged = " with the batch's context"
    if size is None or size > max_bytes:
        return Rejection(index, message_id, [f"message: larger than {max_bytes} bytes{merged}"],
                         "too_large")
    return None


_REASONS = {"type": "unknown_type", "timestamp": "invalid_timestamp",
            "originalTimestamp": "invalid_timestamp", "sentAt": "invalid_timestamp",
            **dict.fromkeys(_ID_FIELDS, "invalid_identifier")}


def _listed(errors: list[str]) -> list[str]:
    if len(errors) <= MAX_ERRORS:
        return errors
    return [*errors[:MAX_ERRORS], f"... and {len(errors) - MAX_ERRORS} more errors"]


def normalize(raw: Any, *, index: int, source: Source, received_at: datetime,
              batch_context: BatchContext | None = None,
              batch_sent_at: datetime | None = None,
              max_message_bytes: int = 32 * 1024,
              max_future_skew: timedelta = timedelta(days=1)) -> Touchpoint | Rejection:
    """Validate one Segment message and turn it into a canonical touchpoint. Never
    raises on any JSON value, of any depth: what it cannot take is a :class:`Rejection`."""
    body = touchpoint_body(raw, index=index, source=source, received_at=received_at,
                           batch_context=batch_context, batch_sent_at=batch_sent_at,
                           max_message_bytes=max_message_bytes,
                           max_future_skew=max_future_skew)
    return body if isinstance(body, Rejection) else Touchpoint.model_construct(**body)


def touchpoint_body(raw: Any, *, index: int, source: Source, received_at: datetime,
                    batch_context: BatchContext | None = None,
                    batch_sent_at: datetime | None = None,
                    max_message_bytes: int = 32 * 1024,
                    max_future_skew: timedelta = timedelta(days=1),
                    ) -> dict[str, Any] | Rejection:
    """:func:`normalize`, the touchpoint as its JSON object (its fields in order, the
    absent ones left out): what ingest seals and publishes, without building a model
    for each message (the hot path)."""
    if not isinstance(raw, dict):
        return Rejection(index, None, ["message: must be a JSON object"], "not_an_object")
    message_id = raw.get("messageId")
    message_id = message_id if isinstance(message_id, str) else None
    shape = _shape(raw, index, message_id, batch_context, max_message_bytes)
    if shape is not None:
        return shape
    try:
        msg = SegmentMessage.model_validate(raw)
    except ValidationError as err:
        first = err.errors()[0]["loc"][0] if err.errors()[0]["loc"] else ""
        return Rejection(index, message_id, _listed(_readable(err)),
                         _REASONS.get(str(first), "invalid_field"))

    errors: list[tuple[str, str]] = []
    if not (msg.userId or msg.anonymousId):
        errors.append(("missing_identity", "userId or anonymousId is required"))
    elif identifiers.founder(msg.userId, msg.anonymousId) is None:
        errors.append(("missing_identity", "userId or anonymousId: a placeholder value "
                                           "('n/a', 'null', ...) identifies nobody"))
    if msg.type is MessageType.TRACK and not msg.event:
        errors.append(("missing_event", "event: required for track"))
    if msg.type is MessageType.ALIAS and not msg.previousId:
        errors.append(("missing_previous_id", "previousId: required for alias"))
    if msg.type is MessageType.TRACK:
        errors += vocabulary.property_errors(_RULES, msg.event, msg.properties)
    try:
        ts = event_time(msg, batch_sent_at, received_at)
    except OverflowError:
        ts = None
    if ts is None or ts < EPOCH:
        errors.append(("invalid_timestamp", "timestamp: before 1970 or out of range"))
    elif ts > received_at + max_future_skew:
        errors.append(("future_timestamp", "timestamp: in the future"))
    if errors or ts is None:
        return Rejection(index, message_id, _listed([e for _, e in errors]), errors[0][0])

    context = {**(batch_context.values if batch_context else {}), **msg.context}
    traits = msg.traits or (context.get("traits") if isinstance(context.get("traits"), dict)
                            else {})
    hint = context.get("channel")
    channel = Channel(hint) if isinstance(hint, str) and hint in _CHANNELS else source.channel
    # Every field was validated above: no model is built, nor anything validated again.
    sent = msg.sentAt or batch_sent_at
    fields = {"schema_version": SCHEMA_VERSION, "message_id": msg.messageId or str(uuid.uuid4()),
              "source": source.source, "type": msg.type, "event": msg.event, "name": msg.name,
              "category": msg.category, "user_id": msg.userId, "anonymous_id": msg.anonymousId,
              "previous_id": msg.previousId, "group_id": msg.groupId, "channel": channel,
              "timestamp": ts, "received_at": received_at,
              "sent_at": _as_utc(sent) if sent else None, "properties": msg.properties,
              "traits": traits, "context": context}
    return {k: v for k, v in fields.items() if v is not None}
