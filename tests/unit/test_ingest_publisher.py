"""The publisher reports each record on its own: a record Kafka refuses, before or after
sending, fails alone, so the records sent around it are still confirmed; and a dead
letter can always be encoded, however deep the message it keeps."""

import asyncio
from datetime import UTC, datetime

import orjson
from aiokafka.errors import KafkaTimeoutError, NotEnoughReplicasError

from rapport.ingest.domain import Rejection, normalize
from rapport.ingest.publisher import TouchpointPublisher
from rapport.ingest.settings import Source
from rapport.ingest.shape import letter_bytes
from rapport.shared import topics

NOW = datetime(2026, 11, 23, 12, 0, tzinfo=UTC)


class Producer:
    """aiokafka's ``send`` contract: raises if it cannot queue, else a future of the ack."""

    def __init__(self, refuse: set[bytes] = frozenset(), fail: set[bytes] = frozenset()):
        self.refuse, self.fail, self.sent = refuse, fail, []

    async def send(self, topic, value, key=None):
        if key in self.refuse:
            raise KafkaTimeoutError("buffer full")
        future = asyncio.get_running_loop().create_future()
        if key in self.fail or (topic == topics.DEAD_LETTER.name and b"fail" in value):
            future.set_exception(NotEnoughReplicasError())
        else:
            future.set_result(None)
            self.sent.append((topic, value))
        return future


def touchpoint(user: str):
    return normalize({"type": "track", "userId": user, "event": "E"}, index=0,
                     source=Source(source="s"), received_at=NOW)


def deep(levels: int):
    value: list = []
    for _ in range(levels):
        value = [value]
    return {"type": "track", "messageId": "deep", "properties": {"x": value}}


async def test_a_refused_record_fails_alone():
    producer = Producer(refuse={b"b"}, fail={b"c"})
    records = [(u.encode(), touchpoint(u).to_bytes()) for u in "abcd"]
    outcomes, letters_ok = await TouchpointPublisher(producer).publish(records, [])
    assert [type(o).__name__ if o else None for o in outcomes] == [
        None, "KafkaTimeoutError", "NotEnoughReplicasError", None]
    assert letters_ok and len(producer.sent) == 2


async def test_dead_letters_of_any_depth_are_sent_and_their_failures_reported():
    producer = Producer()
    raws = [deep(252), deep(1022), {"messageId": "fail"}]
    rejections = [Rejection(i, "m", ["message: nested deeper than 32 levels"], "too_deep")
                  for i in range(3)]
    letters = [letter_bytes({"index": r.index, "reason": r.reason, "errors": r.errors}, raw)
               for r, raw in zip(rejections, raws, strict=True)]
    outcomes, letters_ok = await TouchpointPublisher(producer).publish(
        [(b"a", touchpoint("a").to_bytes())], letters)
    assert outcomes == [None] and not letters_ok  # the third letter was not acknowledged
    letters = [orjson.loads(v) for t, v in producer.sent if t == topics.DEAD_LETTER.name]
    assert [(x["index"], x["reason"], x["message"]["messageId"]) for x in letters] == [
        (0, "too_deep", "deep"), (1, "too_deep", "deep")]
    assert all("not encodable" in x["messageNote"] for x in letters)
