"""Poison input through the real app and the real Kafka: a message that is too deep,
carries absurd numbers or a dirty id is rejected on its own, kept on the dead-letter
topic, and never costs its batch a 500 or a 503; the valid messages beside it are
published exactly once. A batch context that no message could carry is a 400 with
nothing published."""

import uuid

import orjson
import pytest

from rapport.shared import topics
from rapport.shared.events import Touchpoint
from tests.conftest import redis_url
from tests.helpers import end_offsets, open_letters, open_touchpoints, read_since

AUTH = ("dev-write-key", "")


def arrays(levels: int) -> bytes:
    """JSON text of ``levels`` nested arrays (as text: Python's encoder would recurse)."""
    return b"[" * levels + b"]" * levels


def deep_body(run: str, levels: int) -> bytes:
    """A batch of [good, deep, good]: the deep one's ``properties.x`` nests ``levels``
    arrays, so the message is ``levels + 2`` deep and the body ``levels + 4``."""
    body = orjson.dumps({"batch": [good(run, 0), {**good(run, 1), "properties": {"x": 0}},
                                   good(run, 2)]})
    return body.replace(b'"x":0', b'"x":' + arrays(levels), 1)


def good(run: str, i: int) -> dict:
    return {"type": "track", "userId": f"poison-{run}", "event": "Product Viewed",
            "messageId": f"{run}-{i}", "properties": {"price": 9.5, "quantity": 1}}


async def published(stack, since, run: str, expect: int) -> list[Touchpoint]:
    """This run's touchpoints (reads on a while past ``expect``, to catch extra copies)."""
    records = await read_since(stack.kafka_bootstrap, topics.TOUCHPOINTS, since,
                               until=lambda rs: sum(run in r.value.decode() for r in rs)
                               > expect, timeout=3)
    ours = [r.value for r in records if run in r.value.decode()]
    return await open_touchpoints(redis_url(stack, 1), ours)


async def letters(stack, since, run: str, expect: int) -> list[dict]:
    records = await read_since(stack.kafka_bootstrap, topics.DEAD_LETTER, since,
                               until=lambda rs: sum(run in r.value.decode() for r in rs)
                               >= expect)
    ours = [orjson.loads(r.value) for r in records if run in r.value.decode()]
    return await open_letters(redis_url(stack, 1), ours)


async def offsets(stack):
    return (await end_offsets(stack.kafka_bootstrap, topics.TOUCHPOINTS),
            await end_offsets(stack.kafka_bootstrap, topics.DEAD_LETTER))


@pytest.mark.parametrize("levels", [252, 253, 500, 1020])
async def test_deep_json_is_rejected_and_its_batch_published_once(stack, ingest, levels):
    run = uuid.uuid4().hex[:8]
    since, dl_since = await offsets(stack)
    resp = await ingest.post("/v1/batch", content=deep_body(run, levels), auth=AUTH,
                             headers={"Content-Type": "application/json"})
    assert resp.status_code == 200, resp.text
    body = resp.json()
    assert body["accepted"] == 2
    assert body["rejected"] == [{"index": 1, "messageId": f"{run}-1",
                                 "errors": ["message: nested deeper than 32 levels"]}]
    ids = [tp.message_id for tp in await published(stack, since, run, 2)]
    assert sorted(ids) == [f"{run}-0", f"{run}-2"]  # once each
    (letter,) = await letters(stack, dl_since, run, 1)
    assert letter["reason"] == "too_deep" and letter["messageId"] == f"{run}-1"
    assert letter["message"]["messageId"] == f"{run}-1"  # kept, bounded if need be


async def test_the_deepest_single_message_is_rejected_and_deeper_bodies_are_400(stack, ingest):
    run = uuid.uuid4().hex[:8]
    since, _ = await offsets(stack)
    track = orjson.dumps({"userId": f"poison-{run}", "event": "E", "messageId": f"{run}-t",
                          "properties": {"x": 0}}).replace(b'"x":0', b'"x":' + arrays(1022))
    resp = await ingest.post("/v1/track", content=track, auth=AUTH)  # a 1024-level body
    assert resp.status_code == 200 and resp.json()["accepted"] == 0, resp.text
    assert "nested deeper" in resp.json()["rejected"][0]["errors"][0]
    # Beyond orjson's 1024 levels the body cannot be read: the whole request is a 400.
    resp = await ingest.post("/v1/batch", content=deep_body(run, 1023), auth=AUTH)
    assert resp.status_code == 400 and resp.json()["code"] == "invalid_json"
    assert await published(stack, since, run, 0) == []


POISON = [
    ("Product Added", {"price": 5, "quantity": 1e300}, "properties.quantity"),
    ("Order Completed", {"order_id": "o", "total": 1e308}, "properties.total"),
    ("Order Completed", {"order_id": "o", "total": -120.0}, "properties.total"),
    ("Order Completed", {"total": 10, "products": [{"price": 5, "quantity": 1e300}]},
     "properties.products[0].quantity"),
    ("Order Completed", {"total": "NaN"}, "not a string"),
    ("Order Completed", {"total": "Infinity"}, "not a string"),
    ("Order Completed", {"total": "1e400"}, "not a string"),
    ("Order Refunded", {"order_id": "o", "total": -1e9}, "properties.total"),
    ("Survey Responded", {"nps": 1e6}, "properties.nps"),
    ("Call Ended", {"duration_s": -30}, "properties.duration_s"),
]


async def test_poison_numbers_are_rejected_per_message_and_dead_lettered(stack, ingest):
    run = uuid.uuid4().hex[:8]
    since, dl_since = await offsets(stack)
    batch = [good(run, 0)] + [
        {"type": "track", "userId": f"poison-{run}", "event": event, "properties": props,
         "messageId": f"{run}-p{i}"} for i, (event, props, _) in enumerate(POISON)]
    resp = await ingest.post("/v1/batch", json={"batch": batch}, auth=AUTH)
    assert resp.status_code == 200, resp.text
    body = resp.json()
    assert body["accepted"] == 1 and len(body["rejected"]) == len(POISON)
    for rejected, (_, _, needle) in zip(body["rejected"], POISON, strict=True):
        assert any(needle in e for e in rejected["errors"]), rejected
    ids = [tp.message_id for tp in await published(stack, since, run, 1)]
    assert ids == [f"{run}-0"]
    kept = await letters(stack, dl_since, run, len(POISON))
    assert sorted(k["messageId"] for k in kept) == sorted(f"{run}-p{i}"
                                                          for i in range(len(POISON)))
    assert {k["reason"] for k in kept} == {"invalid_number"}
    metrics = (await ingest.get("/metrics")).text
    assert 'outcome="rejected",reason="invalid_number"' in metrics


async def test_numbers_beyond_double_range_make_the_body_unreadable(stack, ingest):
    run = uuid.uuid4().hex[:8]
    since, _ = await offsets(stack)
    body = orjson.dumps({"batch": [good(run, 0), {**good(run, 1), "properties": {
        "price": 0}}]}).replace(b'"price":0}', b'"price":1e400}')
    resp = await ingest.post("/v1/batch", content=body, auth=AUTH)
    assert resp.status_code == 400 and resp.json()["code"] == "invalid_json"
    assert "infinity" in resp.json()["message"]
    assert await published(stack, since, run, 0) == []


async def test_ids_are_cleaned_before_they_are_published_or_rejected(stack, ingest):
    run = uuid.uuid4().hex[:8]
    since, _ = await offsets(stack)
    batch = [{"type": "identify", "userId": f"  id-{run}\u3000", "messageId": f"{run}-a"},
             {"type": "identify", "userId": f"\uff49\uff44-{run}", "messageId": f"{run}-b"},
             {"type": "identify", "userId": f"id-{run}\u200b", "messageId": f"{run}-c"},
             {"type": "alias", "userId": f"id-{run}", "previousId": "\u202eevil",
              "messageId": f"{run}-d"},
             {"type": "group", "userId": f"id-{run}", "groupId": "g\x00", "messageId": f"{run}-e"}]
    resp = await ingest.post("/v1/batch", json={"batch": batch}, auth=AUTH)
    assert resp.status_code == 200, resp.text
    body = resp.json()
    assert body["accepted"] == 2
    assert [(r["index"], r["errors"][0].split(":")[0]) for r in body["rejected"]] == [
        (2, "userId"), (3, "previousId"), (4, "groupId")]
    assert all("control, format or bidi" in r["errors"][0] for r in body["rejected"])
    tps = await published(stack, since, run, 2)
    assert sorted(tp.user_id for tp in tps) == [f"id-{run}"] * 2
    assert {tp.customer_key for tp in tps} == {f"id-{run}"}


async def test_a_channel_hint_that_is_not_text_is_ignored(stack, ingest):
    resp = await ingest.post("/v1/batch", auth=AUTH, json={"batch": [
        {"type": "page", "anonymousId": "hint", "context": {"channel": {"web": True}}}]})
    assert resp.status_code == 200 and resp.json()["accepted"] == 1, resp.text


def _context_case(levels: int) -> dict:
    node: dict = {"leaf": 1}
    for _ in range(levels - 1):
        node = {"n": node}
    return node


@pytest.mark.parametrize(("context", "code"), [
    (_context_case(31), None),  # the deepest a message's context may be
    (_context_case(32), "context_too_deep"),
    (_context_case(300), "context_too_deep"),             # past orjson's encoder
    ({"blob": "x" * 9000}, "context_too_large"),          # over 8 KB, copied into each message
    ({"blob": "x" * 400_000}, "context_too_large"),
    (["web"], "invalid_context"),
])
async def test_batch_context_is_checked_before_anything_is_published(stack, ingest, context,
                                                                     code):
    run = uuid.uuid4().hex[:8]
    since, _ = await offsets(stack)
    batch = [good(run, i) for i in range(3)]
    resp = await ingest.post("/v1/batch", json={"batch": batch, "context": context}, auth=AUTH)
    if code is None:
        assert resp.status_code == 200 and resp.json()["accepted"] == 3, resp.text
        tps = await published(stack, since, run, 3)
        assert len(tps) == 3 and all(tp.context["n"] for tp in tps)
        return
    assert resp.status_code == 400, resp.text
    assert resp.json()["code"] == code and resp.json()["message"].startswith("context: ")
    assert await published(stack, since, run, 0) == []


async def test_a_message_too_large_with_the_batch_context_is_rejected_alone(stack, ingest):
    run = uuid.uuid4().hex[:8]
    since, _ = await offsets(stack)
    big = {**good(run, 1), "properties": {"notes": "n" * 26_000}}
    resp = await ingest.post("/v1/batch", auth=AUTH, json={
        "batch": [good(run, 0), big], "context": {"page": {"url": "u" * 7000}}})
    assert resp.status_code == 200, resp.text
    assert resp.json()["accepted"] == 1
    assert "with the batch's context" in resp.json()["rejected"][0]["errors"][0]
    assert [tp.message_id for tp in await published(stack, since, run, 1)] == [f"{run}-0"]
