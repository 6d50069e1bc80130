"""HTTP: Segment's tracking API. Routes only parse, authenticate and delegate."""

from __future__ import annotations

import base64
import gzip
import zlib
from datetime import UTC, datetime, timedelta
from typing import Any

import orjson
from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse
from prometheus_client import Counter
from pydantic import BaseModel, TypeAdapter, ValidationError

from rapport.shared.events import MessageType, Touchpoint
from rapport.shared.service import ApiError

from .domain import Rejection, normalize
from .publisher import KafkaUnavailable, TouchpointPublisher
from .settings import IngestSettings, Source

MESSAGES = Counter("rapport_ingest_messages_total", "Messages by outcome",
                   ["source", "outcome"])

router = APIRouter(prefix="/v1", tags=["tracking"])
_datetime = TypeAdapter(datetime)


class IngestResult(BaseModel):
    success: bool
    accepted: int
    rejected: list[dict[str, Any]]


_ERRORS = {
    400: {"description": "Not JSON, not an object, or batch too long"},
    401: {"description": "Missing or unknown write key"},
    413: {"description": "Request over 500 KB"},
    415: {"description": "Not JSON content"},
    503: {"description": "Kafka could not acknowledge in time; retry"},
}


async def _read_body(request: Request, settings: IngestSettings) -> bytes:
    ctype = request.headers.get("content-type", "application/json").split(";")[0].strip().lower()
    if ctype not in ("application/json", "text/plain", "") and not ctype.endswith("+json"):
        raise ApiError(415, f"content type '{ctype}' is not JSON; send application/json")
    limit = settings.max_request_bytes
    declared = request.headers.get("content-length")
    if declared and declared.isdigit() and int(declared) > limit:
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
            if len(plain) > limit or decompressor.unconsumed_tail:
                raise ApiError(413, f"decompressed body over {limit} bytes")
            return plain
        except (zlib.error, gzip.BadGzipFile) as exc:
            raise ApiError(400, "body is not valid gzip", code="invalid_gzip") from exc
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
    if auth.lower().startswith("basic "):
        try:
            key = base64.b64decode(auth[6:].strip(), validate=True).decode().split(":", 1)[0]
        except (ValueError, UnicodeDecodeError):
            key = None
    if not key and isinstance(payload.get("writeKey"), str):
        key = payload["writeKey"]
    if not key:
        raise ApiError(401, "missing write key: use HTTP Basic (key as user name) or writeKey",
                       headers={"WWW-Authenticate": 'Basic realm="rapport"'})
    source = sources.get(key)
    if source is None:
        raise ApiError(401, "unknown write key",
                       headers={"WWW-Authenticate": 'Basic realm="rapport"'})
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


async def _ingest(request: Request, messages: list[Any], payload: dict[str, Any],
                  source: Source) -> JSONResponse:
    settings: IngestSettings = request.app.state.settings
    publisher: TouchpointPublisher = request.app.state.publisher
    received = datetime.now(UTC)
    batch_context = payload.get("context") if isinstance(payload.get("context"), dict) else None
    sent_at = _sent_at(payload)
    accepted: list[Touchpoint] = []
    rejected: list[Rejection] = []
    raw_rejected: list[Any] = []
    for i, raw in enumerate(messages):
        result = normalize(raw, index=i, source=source, received_at=received,
                           batch_context=batch_context, batch_sent_at=sent_at,
                           max_message_bytes=settings.max_message_bytes,
                           max_future_skew=timedelta(seconds=settings.max_future_skew_s))
        if isinstance(result, Rejection):
            rejected.append(result)
            raw_rejected.append(raw)
        else:
            accepted.append(result)
    try:
        await publisher.publish(accepted, rejected, raw_rejected, source.source)
    except KafkaUnavailable as exc:
        raise ApiError(503, str(exc), headers={"Retry-After": "5"}) from exc
    MESSAGES.labels(source.source, "accepted").inc(len(accepted))
    MESSAGES.labels(source.source, "rejected").inc(len(rejected))
    return JSONResponse({"success": True, "accepted": len(accepted),
                           "rejected": [r.as_json() for r in rejected]})


@router.post("/batch", response_model=IngestResult, responses=_ERRORS,
             summary="Many messages of any type (Segment batch)")
async def batch(request: Request) -> JSONResponse:
    settings: IngestSettings = request.app.state.settings
    payload = _parse(await _read_body(request, settings))
    source = _source(request, payload, settings.sources())
    messages = payload.get("batch")
    if not isinstance(messages, list):
        raise ApiError(400, "batch: must be a list of messages", code="invalid_batch")
    if len(messages) > settings.max_batch_messages:
        raise ApiError(400, f"batch: more than {settings.max_batch_messages} messages",
                       code="batch_too_long")
    return await _ingest(request, messages, payload, source)


def _single(kind: MessageType):
    async def endpoint(request: Request) -> JSONResponse:
        settings: IngestSettings = request.app.state.settings
        payload = _parse(await _read_body(request, settings))
        source = _source(request, payload, settings.sources())
        message = {k: v for k, v in payload.items() if k != "writeKey"}
        message["type"] = kind.value
        return await _ingest(request, [message], {}, source)

    endpoint.__name__ = kind.value
    return endpoint


for _kind in (MessageType.TRACK, MessageType.IDENTIFY, MessageType.PAGE, MessageType.SCREEN,
              MessageType.GROUP, MessageType.ALIAS):
    router.add_api_route(f"/{_kind.value}", _single(_kind), methods=["POST"],
                         response_model=IngestResult, responses=_ERRORS,
                         summary=f"One {_kind.value} message")
