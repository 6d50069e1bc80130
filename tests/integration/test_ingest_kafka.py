"""Ingest against the real Kafka: what it accepts is on the topic, what it
rejects is on the dead-letter topic with its reason, and bad requests get 4xx."""

import gzip
import uuid

import orjson
import pytest

from rapport.ingest.app import build
from rapport.ingest.settings import IngestSettings
from rapport.shared import topics
from rapport.shared.events import Touchpoint
from tests.conftest import redis_url
from tests.helpers import end_offsets, read_since, serving

AUTH = ("dev-write-key", "")


@pytest.fixture
async def ingest(stack):
    settings = IngestSettings(kafka_bootstrap=stack.kafka_bootstrap,
                              redis_url=redis_url(stack, 1), dev_keys=True)
    async with serving(build(settings)) as client:
        yield client


async def test_batch_is_acknowledged_by_kafka_and_invalid_messages_go_to_dead_letter(
        stack, ingest):
    run = uuid.uuid4().hex[:8]
    since = await end_offsets(stack.kafka_bootstrap, topics.TOUCHPOINTS)
    dl_since = await end_offsets(stack.kafka_bootstrap, topics.DEAD_LETTER)
    batch = [
        {"type": "track", "userId": f"it-{run}", "event": "Order Completed",
         "messageId": f"{run}-1", "properties": {"total": 12.5},
         "context": {"channel": "store"}},
        {"type": "identify", "userId": f"it-{run}", "messageId": f"{run}-2",
         "traits": {"email": "x@example.com"}},
        {"type": "page", "anonymousId": f"anon-{run}", "messageId": f"{run}-3", "name": "Home"},
        {"type": "track", "messageId": f"{run}-bad", "event": "No identity"},
    ]
    resp = await ingest.post("/v1/batch", json={"batch": batch}, auth=AUTH)
    assert resp.status_code == 200, resp.text
    body = resp.json()
    assert body["success"] is True and body["accepted"] == 3
    assert body["rejected"] == [{"index": 3, "messageId": f"{run}-bad",
                                 "errors": ["userId or anonymousId is required"]}]

    records = await read_since(stack.kafka_bootstrap, topics.TOUCHPOINTS, since,
                               until=lambda rs: len([r for r in rs if run in r.value.decode()])
                               >= 3)
    mine = {Touchpoint.from_bytes(r.value).message_id: r for r in records
            if run in r.value.decode()}
    assert set(mine) == {f"{run}-1", f"{run}-2", f"{run}-3"}
    order = Touchpoint.from_bytes(mine[f"{run}-1"].value)
    assert order.channel == "store" and order.properties == {"total": 12.5}
    assert mine[f"{run}-1"].key == f"it-{run}".encode()
    assert mine[f"{run}-3"].key == f"anon-{run}".encode()

    letters = await read_since(stack.kafka_bootstrap, topics.DEAD_LETTER, dl_since,
                               until=lambda rs: any(run in r.value.decode() for r in rs))
    letter = next(orjson.loads(r.value) for r in letters if run in r.value.decode())
    assert letter["source"] == "dev" and letter["messageId"] == f"{run}-bad"
    assert letter["errors"] == ["userId or anonymousId is required"]


async def test_gzip_single_endpoint_and_write_key_in_body(stack, ingest):
    body = gzip.compress(orjson.dumps({"userId": "gz", "event": "Product Viewed",
                                       "writeKey": "dev-write-key"}))
    resp = await ingest.post("/v1/track", content=body, headers={
        "Content-Encoding": "gzip", "Content-Type": "application/json"})
    assert resp.status_code == 200 and resp.json()["accepted"] == 1


@pytest.mark.parametrize(("kwargs", "status", "code"), [
    ({"content": b"{not json", "auth": AUTH}, 400, "invalid_json"),
    ({"content": b"[1, 2]", "auth": AUTH}, 400, "not_an_object"),
    ({"json": {"batch": {}}, "auth": AUTH}, 400, "invalid_batch"),
    ({"json": {"batch": [{}] * 2501}, "auth": AUTH}, 400, "batch_too_long"),
    ({"content": b"x" * 600_000, "auth": AUTH}, 413, "payload_too_large"),
    ({"content": b"<xml/>", "auth": AUTH, "headers": {"Content-Type": "application/xml"}},
     415, "unsupported_media_type"),
    ({"content": b"nope", "auth": AUTH, "headers": {"Content-Encoding": "gzip"}},
     400, "invalid_gzip"),
    ({"json": {"batch": []}}, 401, "unauthorized"),
    ({"json": {"batch": []}, "auth": ("wrong", "")}, 401, "unauthorized"),
])
async def test_bad_requests_get_a_clear_4xx(ingest, kwargs, status, code):
    resp = await ingest.post("/v1/batch", **kwargs)
    assert resp.status_code == status, resp.text
    assert resp.json()["code"] == code and resp.json()["message"]


async def test_health_readiness_and_metrics(ingest):
    assert (await ingest.get("/healthz")).status_code == 200
    ready = await ingest.get("/readyz")
    assert ready.status_code == 200 and ready.json()["checks"] == {"kafka": "ok", "redis": "ok"}
    metrics = await ingest.get("/metrics")
    assert "rapport_http_requests_total" in metrics.text


async def test_unreachable_kafka_makes_ingest_unready_and_never_half_accepts(stack):
    settings = IngestSettings(kafka_bootstrap=stack.kafka_bootstrap,
                              redis_url=redis_url(stack, 1), dev_keys=True, ack_timeout_s=1)
    app = build(settings)
    async with serving(app) as client:
        # Point the publisher at a producer that cannot reach any broker.
        from aiokafka import AIOKafkaProducer

        from rapport.ingest.publisher import TouchpointPublisher
        dead = AIOKafkaProducer(bootstrap_servers=stack.kafka_bootstrap, acks="all",
                                enable_idempotence=True)
        await dead.start()
        await dead.stop()
        app.state.publisher = TouchpointPublisher(dead, 1)
        resp = await client.post("/v1/batch", auth=AUTH, json={"batch": [
            {"type": "track", "userId": "u", "event": "E"}]})
        assert resp.status_code == 503 and resp.headers["Retry-After"]
        assert resp.json()["code"] == "unavailable"
