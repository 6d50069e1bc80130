from datetime import UTC, datetime, timedelta

import pytest

from rapport.ingest.domain import Rejection, normalize, touchpoint_body
from rapport.ingest.settings import Source
from rapport.shared.events import Channel, MessageType, Touchpoint

NOW = datetime(2026, 11, 23, 12, 0, tzinfo=UTC)
SOURCE = Source(source="site", channel=Channel.WEB)


def run(raw, **kw):
    return normalize(raw, index=0, source=SOURCE, received_at=NOW, **kw)


def test_track_becomes_a_canonical_touchpoint():
    tp = run({"type": "track", "userId": "u1", "event": "Product Viewed", "messageId": "m1",
              "properties": {"product_id": "p1", "price": 9.5},
              "timestamp": "2026-11-23T11:59:00Z"})
    assert isinstance(tp, Touchpoint)
    assert (tp.type, tp.event, tp.user_id, tp.message_id) == (MessageType.TRACK,
                                                              "Product Viewed", "u1", "m1")
    assert tp.channel is Channel.WEB and tp.source == "site"
    assert tp.timestamp == datetime(2026, 11, 23, 11, 59, tzinfo=UTC)
    assert Touchpoint.from_bytes(tp.to_bytes()) == tp


def test_the_published_body_is_the_touchpoint_as_json():
    raw = {"type": "track", "userId": "u1", "event": "E", "messageId": "m1",
           "sentAt": "2026-11-23T11:59:30Z", "context": {"ip": "203.0.113.7"}}
    body = touchpoint_body(raw, index=0, source=SOURCE, received_at=NOW)
    tp = run(raw)
    assert body == {k: v for k, v in tp.__dict__.items() if v is not None}
    assert list(body) == [k for k in Touchpoint.model_fields if k in body]
    assert Touchpoint.model_validate(body) == tp


def test_context_channel_wins_over_source_default_only_when_known():
    assert run({"type": "page", "anonymousId": "a", "context": {"channel": "store"}}).channel \
        is Channel.STORE
    assert run({"type": "page", "anonymousId": "a", "context": {"channel": "fax"}}).channel \
        is Channel.WEB


def test_clock_skew_is_corrected_with_sent_at():
    # The device clock is 1 hour fast: it says the event happened 10s before it sent it.
    tp = run({"type": "track", "userId": "u", "event": "E",
              "timestamp": "2026-11-23T12:59:50Z", "sentAt": "2026-11-23T13:00:00Z"})
    assert tp.timestamp == NOW - timedelta(seconds=10)


def test_batch_level_sent_at_applies_to_each_message():
    tp = run({"type": "track", "userId": "u", "event": "E", "timestamp": "2026-11-23T12:59:50Z"},
             batch_sent_at=datetime(2026, 11, 23, 13, 0, tzinfo=UTC))
    assert tp.timestamp == NOW - timedelta(seconds=10)


def test_historical_timestamps_are_valid_and_future_ones_are_not():
    assert isinstance(run({"type": "track", "userId": "u", "event": "E",
                           "timestamp": "2011-03-01T00:00:00Z"}), Touchpoint)
    rej = run({"type": "track", "userId": "u", "event": "E", "timestamp": "2031-01-01T00:00:00Z"})
    assert isinstance(rej, Rejection) and "future" in rej.errors[0]


@pytest.mark.parametrize(("raw", "needle"), [
    ({"type": "track", "event": "E"}, "userId or anonymousId"),
    ({"type": "track", "userId": "u"}, "event"),
    ({"type": "alias", "userId": "u"}, "previousId"),
    ({"type": "launch", "userId": "u"}, "type"),
    ({"type": "track", "userId": "u", "event": "E", "properties": [1]}, "properties"),
    ({"type": "track", "userId": "u", "event": "E", "timestamp": "yesterday"}, "timestamp"),
    ({"type": "track", "userId": True, "event": "E"}, "userId"),
    ({"type": "track", "userId": "", "event": "E"}, "userId"),
    ("not an object", "object"),
])
def test_invalid_messages_are_rejected_with_a_reason(raw, needle):
    rej = run(raw)
    assert isinstance(rej, Rejection)
    assert any(needle in e for e in rej.errors), rej.errors


def test_oversize_message_is_rejected():
    rej = run({"type": "track", "userId": "u", "event": "E", "messageId": "big",
               "properties": {"blob": "x" * 40_000}})
    assert isinstance(rej, Rejection) and rej.message_id == "big"
    assert "larger than" in rej.errors[0]


def test_numeric_user_id_is_text_and_traits_come_from_context():
    tp = run({"type": "track", "userId": 42, "event": "E",
              "context": {"traits": {"email": "a@b.c"}}})
    assert tp.user_id == "42" and tp.traits == {"email": "a@b.c"}


def test_missing_message_id_gets_one():
    tp = run({"type": "page", "anonymousId": "a"})
    assert tp.message_id and len(tp.message_id) <= 100
