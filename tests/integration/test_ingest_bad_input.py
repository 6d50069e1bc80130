"""Bad input never breaks ingest: requests that cannot be read get the right 4xx
with ``{"code", "message"}``; messages that are wrong on their own are listed in
``rejected`` with reasons while the rest of the batch goes through."""

import gzip

import orjson
import pytest

AUTH = ("dev-write-key", "")
JSON = {"Content-Type": "application/json"}


def nested(levels: int) -> dict:
    node: dict = {"leaf": 1}
    for _ in range(levels):
        node = {"n": node}
    return node


@pytest.mark.parametrize(("body", "headers", "status", "code"), [
    (b'{"batch": [{"type": "track", "userId": "u", "event": "E"}', JSON, 400, "invalid_json"),
    (b'{"batch": [{"type": "track", "userId": "u", "event": "E", "properties": {"x": NaN}}]}',
     JSON, 400, "invalid_json"),
    (b'{"batch": [], "x": Infinity}', JSON, 400, "invalid_json"),
    (b'{"batch": [{"type": "track", "userId": "\xff\xfe", "event": "E"}]}', JSON, 400,
     "invalid_json"),
    (orjson.dumps({"batch": [nested(1)]}).replace(b'{"leaf":1}', b"[" * 3000 + b"]" * 3000),
     JSON, 400, "invalid_json"),
    (b'"a string"', JSON, 400, "not_an_object"),
    (b"null", JSON, 400, "not_an_object"),
    (b'{"batch": "many"}', JSON, 400, "invalid_batch"),
    (b'{"batch": []}', {"Content-Type": "application/x-www-form-urlencoded"}, 415,
     "unsupported_media_type"),
    (b'{"batch": []}', {**JSON, "Content-Encoding": "br"}, 415, "unsupported_media_type"),
    (gzip.compress(b'{"batch": []}')[:-6], {**JSON, "Content-Encoding": "gzip"}, 400,
     "invalid_gzip"),
    (gzip.compress(b" " * 2_000_000 + b"{}"), {**JSON, "Content-Encoding": "gzip"}, 413,
     "payload_too_large"),
    (b'{"batch": [], "sentAt": "when it was sent"}', JSON, 400, "invalid_sent_at"),
])
async def test_unreadable_requests(ingest, body, headers, status, code):
    resp = await ingest.post("/v1/batch", content=body, headers=headers, auth=AUTH)
    assert resp.status_code == status, resp.text
    assert resp.json()["code"] == code and resp.json()["message"]


GOOD = {"type": "track", "userId": "bad-input-good", "event": "Product Viewed"}


@pytest.mark.parametrize(("message", "needle"), [
    ({"type": "track", "event": "E"}, "userId or anonymousId"),
    ({"type": "track", "userId": "u"}, "event"),
    ({"type": "track", "userId": "u", "event": ""}, "event"),
    ({"type": "launch", "userId": "u"}, "type"),
    ({"userId": "u", "event": "E"}, "type"),
    ({"type": "track", "userId": ["u"], "event": "E"}, "userId"),
    ({"type": "track", "userId": "u", "event": {"name": "E"}}, "event"),
    ({"type": "track", "userId": "u", "event": "E", "properties": "p"}, "properties"),
    ({"type": "identify", "userId": "u", "traits": [1, 2]}, "traits"),
    ({"type": "track", "userId": "u\x00x", "event": "E"}, "control, format or bidi"),
    ({"type": "track", "userId": "u", "event": "E\x07"}, "control characters"),
    ({"type": "track", "userId": "u", "event": "E", "properties": nested(40)}, "nested"),
    ({"type": "track", "userId": "u", "event": "E", "properties": {"x": "y" * 40_000}},
     "larger than"),
    ({"type": "track", "userId": "u", "event": "E", "timestamp": "99999-01-01T00:00:00Z"},
     "timestamp"),
    ({"type": "track", "userId": "u", "event": "E", "timestamp": "0001-01-01T00:00:00Z"},
     "timestamp"),
    ({"type": "track", "userId": "u", "event": "E", "timestamp": 1e20}, "timestamp"),
    ({"type": "track", "userId": "u", "event": "E", "timestamp": "2100-01-01T00:00:00Z"},
     "future"),
    ({"type": "track", "userId": "u", "event": "E", "messageId": "m" * 150}, "messageId"),
    ({"type": "alias", "userId": "u"}, "previousId"),
    ({"type": "track", "userId": "u\u200b", "event": "E"}, "U+200B"),
    ({"type": "track", "userId": "u", "event": "Order Completed",
      "properties": {"total": -10}}, "properties.total"),
    ({"type": "track", "userId": "u", "event": "Product Added",
      "properties": {"quantity": "3"}}, "not a string"),
    ("just text", "object"),
    (42, "object"),
])
async def test_bad_messages_are_rejected_without_failing_the_batch(ingest, message, needle):
    resp = await ingest.post("/v1/batch", json={"batch": [GOOD, message]}, auth=AUTH)
    assert resp.status_code == 200, resp.text
    body = resp.json()
    assert body["accepted"] == 1 and len(body["rejected"]) == 1
    rejected = body["rejected"][0]
    assert rejected["index"] == 1
    assert any(needle in e for e in rejected["errors"]), rejected["errors"]


async def test_limits_hold_exactly(ingest):
    just_enough = {"batch": [{**GOOD, "messageId": f"lim-{i}"} for i in range(2500)]}
    assert (await ingest.post("/v1/batch", json=just_enough, auth=AUTH)).status_code == 200
    too_many = {"batch": [GOOD] * 2501}
    resp = await ingest.post("/v1/batch", json=too_many, auth=AUTH)
    assert resp.status_code == 400 and resp.json()["code"] == "batch_too_long"
    big = {"batch": [{**GOOD, "properties": {"x": "y" * 30_000}}] * 18}   # ~540 KB
    resp = await ingest.post("/v1/batch", json=big, auth=AUTH)
    assert resp.status_code == 413


async def test_healthy_after_all_of_it_and_rejections_are_counted(ingest):
    assert (await ingest.get("/readyz")).status_code == 200
    metrics = (await ingest.get("/metrics")).text
    assert 'outcome="rejected",reason="missing_identity"' in metrics
    assert 'outcome="rejected",reason="too_deep"' in metrics
    assert "rapport_ingest_kafka_ack_seconds_count" in metrics
    assert "rapport_ingest_requests_in_flight" in metrics
    assert 'rapport_ingest_requests_total{source="dev",status="200"}' in metrics
