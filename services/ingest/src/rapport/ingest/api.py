"""HTTP: Segment's tracking API. Routes parse, authenticate and delegate to
:class:`~rapport.ingest.intake.Intake`."""

from __future__ import annotations

import base64
import binascii
import zlib
from datetime import UTC, datetime
from typing import Any

import orjson
from fastapi import APIRouter, Request, Response
from prometheus_client import Counter
from pydantic import BaseModel, TypeAdapter, ValidationError

from rapport.shared.events import MessageType
from rapport.shared.service import ApiError

from .domain import InvalidBatch, read_batch_context
from .intake import Intake, Unavailable
from .settings import IngestSettings, Source

router = APIRouter(prefix="/v1", tags=["tracking"])
REQUESTS = Counter("rapport_ingest_requests_total", "Authenticated ingest requests by source",
                   ["source", "status"])
_datetime = TypeAdapter(datetime)


class RejectedMessage(BaseModel):
    index: int
    messageId: str | None
    errors: list[str]


class IngestResult(BaseModel):
    success: bool
    accepted: int
    rejected: list[RejectedMessage]


_ERRORS: dict[int | str, dict[str, Any]] = {
    400: {"description": "Not JSON (a number beyond double range, such as 1e400, "
                         "included), not an object, batch too long, or a batch context "
                         "that is not an object, nests over 31 levels or is over 8 KB"},
    401: {"description": "Missing or unknown write key"},
    413: {"description": "Request over 500 KB"},
    415: {"description": "Not JSON content"},
    503: {"description": "Kafka could not acknowledge in time; retry after Retry-After"},
}

_ID = {"type": ["string", "integer"], "maxLength": 256}
_TIME = {"type": "string", "format": "date-time"}
_OBJECT = {"type": "object", "additionalProperties": True}


def _message_schema(kind: str | None) -> dict[str, Any]:
    props: dict[str, Any] = {
        "userId": _ID, "anonymousId": _ID, "messageId": {"type": "string", "maxLength": 99},
        "timestamp": _TIME, "originalTimestamp": _TIME, "sentAt": _TIME, "context": _OBJECT,
        "integrations": _OBJECT, "properties": _OBJECT, "traits": _OBJECT,
        "event": {"type": "string", "maxLength": 200}, "name": {"type": "string"},
        "category": {"type": "string"}, "groupId": _ID, "previousId": _ID,
    }
    if kind is None:
        props["type"] = {"type": "string", "enum": [t.value for t in MessageType]}
        return {"type": "object", "properties": props, "required": ["type"]}
    props["writeKey"] = {"type": "string"}
    return {"type": "object", "properties": props}


def _body(schema: dict[str, Any]) -> dict[str, Any]:
    return {"requestBody": {"required": True, "content": {"application/json": {
        "schema": schema}}}}


_BATCH = {"type": "object", "required": ["batch"], "properties": {
    "batch": {"type": "array", "maxItems": 2500, "items": _message_schema(None)},
    "context": _OBJECT, "sentAt": _TIME, "writeKey": {"type": "string"}}}


async def _read_body(request: Request, settings: IngestSettings) -> bytes:
    ctype = request.headers.get("content-type", "application/json").split(";")[0].strip().lower()
    if ctype not in ("application/json", "text/plain", "") and not ctype.endswith("+json"):
        raise ApiError(415, f"content type '{ctype}' is not JSON; send application/json")
    limit = settings.max_request_bytes
    declared = request.headers.get("content-length", "")
    if declared.isdigit() and int(declared) > limit:
        raise ApiError(413, f"request body over {limit} bytes")
    body = bytearray()
    async for chunk in request.stream():
        body += chunk
        if len(body) > limit:
            raise ApiError(413, f"request body over {limit} bytes")
    encoding = request.headers.get("content-encoding", "identity").strip().lower()
    if encoding == "gzip":
        try:
            decompressor = zlib.decompressobj(16 + zlib.MAX_WBITS)
            plain = decompressor.decompress(bytes(body), limit + 1)
        except zlib.error as exc:
            raise ApiError(400, "body is not valid gzip", code="invalid_gzip") from exc
        if len(plain) > limit or decompressor.unconsumed_tail:
            raise ApiError(413, f"decompressed body over {limit} bytes")
        if not decompressor.eof:
            raise ApiError(400, "gzip body is truncated", code="invalid_gzip")
        return plain
    if encoding not in ("identity", ""):
        raise ApiError(415, f"content encoding '{encoding}' is not supported; use gzip")
    return bytes(body)


def _parse(raw: bytes) -> dict[str, Any]:
    try:
        payload = orjson.loads(raw)
    except orjson.JSONDecodeError as exc:
        raise ApiError(400, f"body is not valid JSON: {exc}", code="invalid_json") from exc
    if not isinstance(payload, dict):
        raise ApiError(400, "body must be a JSON object", code="not_an_object")
    return payload


def _source(request: Request, payload: dict[str, Any], sources: dict[str, Source]) -> Source:
    key: str | None = None
    auth = request.headers.get("authorization", "")
    if auth[:6].lower() == "basic ":
        try:
            key = base64.b64decode(auth[6:].strip(), validate=True).decode().split(":", 1)[0]
        except (binascii.Error, ValueError):
            key = None
    if not key and isinstance(payload.get("writeKey"), str):
        key = payload["writeKey"]
    challenge = {"WWW-Authenticate": 'Basic realm="rapport"'}
    if not key:
        raise ApiError(401, "missing write key: use HTTP Basic (key as user name) or writeKey",
                       headers=challenge)
    source = sources.get(key)
    if source is None:
        raise ApiError(401, "unknown write key", headers=challenge)
    return source


def _sent_at(payload: dict[str, Any]) -> datetime | None:
    value = payload.get("sentAt")
    if value is None:
        return None
    try:
        parsed = _datetime.validate_python(value)
    except ValidationError as exc:
        raise ApiError(400, "sentAt: not a valid timestamp", code="invalid_sent_at") from exc
    return parsed.replace(tzinfo=UTC) if parsed.tzinfo is None else parsed


async def _answer(request: Request, messages: list[Any], source: Source,
                  payload: dict[str, Any]) -> Response:
    intake: Intake = request.app.state.intake
    settings: IngestSettings = request.app.state.settings
    try:  # the whole request is refused before any of it is published
        context = read_batch_context(payload.get("context"),
                                     max_message_bytes=settings.max_message_bytes)
    except InvalidBatch as exc:
        raise ApiError(400, str(exc), code=exc.code) from exc
    sent_at = _sent_at(payload)
    try:
        outcome = await intake.ingest(messages, source, batch_context=context,
                                      batch_sent_at=sent_at)
    except Unavailable as exc:
        REQUESTS.labels(source.source, "503").inc()
        raise ApiError(503, str(exc), headers={"Retry-After": str(exc.retry_after)}) from exc
    REQUESTS.labels(source.source, "200").inc()
    # Encoded here, as IngestResult: FastAPI would validate and encode it again (hot path).
    return Response(orjson.dumps({"success": True, "accepted": outcome.accepted,
                                  "rejected": [r.as_json() for r in outcome.rejected]}),
                    media_type="application/json")


@router.post("/batch", response_model=IngestResult, responses=_ERRORS,
             openapi_extra=_body(_BATCH), summary="Many messages of any type (Segment batch)")
async def batch(request: Request) -> Response:
    settings: IngestSettings = request.app.state.settings
    payload = _parse(await _read_body(request, settings))
    source = _source(request, payload, settings.sources())
    messages = payload.get("batch")
    if not isinstance(messages, list):
        raise ApiError(400, "batch: must be a list of messages", code="invalid_batch")
    if len(messages) > settings.max_batch_messages:
        raise ApiError(400, f"batch: more than {settings.max_batch_messages} messages",
                       code="batch_too_long")
    return await _answer(request, messages, source, payload)


def _single(kind: MessageType):
    async def endpoint(request: Request) -> Response:
        settings: IngestSettings = request.app.state.settings
        payload = _parse(await _read_body(request, settings))
        source = _source(request, payload, settings.sources())
        message = {k: v for k, v in payload.items() if k != "writeKey"}
        message["type"] = kind.value
        return await _answer(request, [message], source, {"sentAt": payload.get("sentAt")})

    endpoint.__name__ = kind.value
    return endpoint


for _kind in MessageType:
    router.add_api_route(f"/{_kind.value}", _single(_kind), methods=["POST"],
                         response_model=IngestResult, responses=_ERRORS,
                         openapi_extra=_body(_message_schema(_kind.value)),
                         summary=f"One {_kind.value} message")
