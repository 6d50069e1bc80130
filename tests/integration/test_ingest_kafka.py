"""Ingest against the real Kafka: what it accepts is on the topic, what it
rejects is on the dead-letter topic with its reason, and bad requests get 4xx."""

import asyncio
import gzip
import os
import signal
import uuid

import orjson
import pytest

from rapport.ingest.app import build
from rapport.ingest.settings import IngestSettings
from rapport.shared import topics
from tests.conftest import redis_url
from tests.helpers import dev_fingerprint, end_offsets, open_touchpoints, read_since, serving

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
    ours = [r for r in records if run in r.value.decode()]
    opened = await open_touchpoints(redis_url(stack, 1), [r.value for r in ours])
    mine = {tp.message_id: (r, tp) for r, tp in zip(ours, opened, strict=True)}
    assert set(mine) == {f"{run}-1", f"{run}-2", f"{run}-3"}
    order = mine[f"{run}-1"][1]
    assert order.channel == "store" and order.properties == {"total": 12.5}
    # Keyed by the person's fingerprint, with nothing personal readable on the topic.
    assert mine[f"{run}-1"][0].key == dev_fingerprint("user_id", f"it-{run}")
    assert mine[f"{run}-3"][0].key == dev_fingerprint("anonymous_id", f"anon-{run}")
    assert all(b"x@example.com" not in r.value and f"it-{run}".encode() not in r.value
               for r in ours)

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


def batch_of(run: str, n: int, start: int = 0) -> list[dict]:
    return [{"type": "track", "userId": f"dd-{run}-{i % 7}", "event": "Product Viewed",
             "messageId": f"{run}-{i}", "properties": {"i": i}} for i in range(start, start + n)]


async def published(stack, since, run: str, expect: int) -> list[str]:
    """Message ids of this run on the touchpoints topic (reads a little past ``expect``)."""
    records = await read_since(stack.kafka_bootstrap, topics.TOUCHPOINTS, since,
                               until=lambda rs: sum(run in r.value.decode() for r in rs)
                               > expect, timeout=4)
    ours = [r.value for r in records if run in r.value.decode()]
    return [tp.message_id for tp in await open_touchpoints(redis_url(stack, 1), ours)]


async def test_resends_are_accepted_but_published_once(stack, ingest):
    run = uuid.uuid4().hex[:8]
    since = await end_offsets(stack.kafka_bootstrap, topics.TOUCHPOINTS)
    first = await ingest.post("/v1/batch", json={"batch": batch_of(run, 50)}, auth=AUTH)
    # A resend overlapping the first, with a duplicate inside the same request too.
    resend = batch_of(run, 60, start=20) + batch_of(run, 1, start=70)
    second = await ingest.post("/v1/batch", json={"batch": resend}, auth=AUTH)
    assert first.json()["accepted"] == 50 and second.json()["accepted"] == 61
    ids = await published(stack, since, run, 80)
    assert sorted(ids) == sorted(f"{run}-{i}" for i in range(80))


async def test_concurrent_requests_and_restarts_do_not_republish(stack):
    run = uuid.uuid4().hex[:8]
    since = await end_offsets(stack.kafka_bootstrap, topics.TOUCHPOINTS)
    settings = IngestSettings(kafka_bootstrap=stack.kafka_bootstrap,
                              redis_url=redis_url(stack, 1), dev_keys=True)
    body = {"batch": batch_of(run, 200)}
    async with serving(build(settings)) as a, serving(build(settings)) as b:  # two replicas
        answers = await asyncio.gather(*(c.post("/v1/batch", json=body, auth=AUTH)
                                         for c in (a, b, a, b)))
        assert [r.json()["accepted"] for r in answers] == [200] * 4
    async with serving(build(settings)) as restarted:
        again = await restarted.post("/v1/batch", json=body, auth=AUTH)
        assert again.json()["accepted"] == 200
    ids = await published(stack, since, run, 200)
    assert sorted(ids) == sorted(f"{run}-{i}" for i in range(200))


async def test_kafka_outage_answers_503_and_the_retry_publishes_exactly_once(stack):
    if stack.external_kafka:
        pytest.skip("needs the test profile's own broker process")
    run = uuid.uuid4().hex[:8]
    since = await end_offsets(stack.kafka_bootstrap, topics.TOUCHPOINTS)
    settings = IngestSettings(kafka_bootstrap=stack.kafka_bootstrap,
                              redis_url=redis_url(stack, 1), dev_keys=True, ack_timeout_s=1.5)
    body = {"batch": batch_of(run, 20)}
    kafka_pid = stack.pid("kafka")
    async with serving(build(settings)) as client:
        os.kill(kafka_pid, signal.SIGSTOP)
        try:
            down = await client.post("/v1/batch", json=body, auth=AUTH)
        finally:
            os.kill(kafka_pid, signal.SIGCONT)
        assert down.status_code == 503, down.text
        assert down.headers["Retry-After"] and down.json()["code"] == "unavailable"
        for _ in range(20):  # the SDK's retry loop
            retry = await client.post("/v1/batch", json=body, auth=AUTH)
            if retry.status_code == 200:
                break
            await asyncio.sleep(1)
        assert retry.status_code == 200 and retry.json()["accepted"] == 20
    ids = await published(stack, since, run, 20)
    assert sorted(ids) == sorted(f"{run}-{i}" for i in range(20))  # once each, none lost
