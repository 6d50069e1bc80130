"""Ingest's validation never raises on input: any depth, any number, any id gives a
touchpoint or a rejection with a reason, and what it rejects can always be written
to the dead-letter topic."""

import math
import re
from datetime import UTC, datetime

import orjson
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from rapport.ingest.domain import (
    CAPS,
    MAX_BATCH_CONTEXT_BYTES,
    MAX_DEPTH,
    MAX_ERRORS,
    InvalidBatch,
    Rejection,
    normalize,
    read_batch_context,
)
from rapport.ingest.settings import Source
from rapport.ingest.shape import MAX_LETTER_BYTES, bounded_copy, letter_bytes, nests_deeper
from rapport.shared.events import Channel, Touchpoint
from rapport.shared.identifiers import InvalidIdentifier, clean, clean_unicode

NOW = datetime(2026, 11, 23, 12, 0, tzinfo=UTC)
SOURCE = Source(source="site", channel=Channel.WEB)


def run(raw, **kw):
    return normalize(raw, index=0, source=SOURCE, received_at=NOW, **kw)


def chain(levels: int, kind: str = "list"):
    """A JSON value nesting exactly ``levels`` objects or arrays (built without recursion)."""
    value: object = [] if kind == "list" else {}
    for _ in range(levels - 1):
        value = [value] if kind == "list" else {"n": value}
    return value


def depth(value) -> int:
    """Reference depth (recursive; only for shallow values)."""
    if isinstance(value, dict):
        return 1 + max(map(depth, value.values()), default=0)
    if isinstance(value, list):
        return 1 + max(map(depth, value), default=0)
    return 0


def dead_letter(raw) -> dict:
    out = letter_bytes({"source": "site", "index": 0, "reason": "r", "errors": ["e"]}, raw)
    assert len(out) <= MAX_LETTER_BYTES
    return orjson.loads(out)


# -- depth -----------------------------------------------------------------------------

@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(levels=st.integers(1, 1100), kind=st.sampled_from(["list", "dict"]),
       field=st.sampled_from(["properties", "traits", "context", "extra", "userId", "event",
                              "messageId", "timestamp"]))
def test_any_depth_anywhere_gives_a_touchpoint_or_a_rejection(levels, kind, field):
    value = chain(levels, kind)
    if field in ("properties", "traits", "context"):
        value = {"x": value}
        levels += 1
    raw = {"type": "track", "userId": "u", "event": "E", field: value}
    result = run(raw)
    assert isinstance(result, Touchpoint | Rejection)
    if levels + 1 > MAX_DEPTH:  # the message itself is one level more
        assert isinstance(result, Rejection) and result.reason == "too_deep"
        assert "nested deeper than 32 levels" in result.errors[0]
    if isinstance(result, Touchpoint):
        assert Touchpoint.from_bytes(result.to_bytes()) == result
    assert dead_letter(raw)["reason"] == "r"


@pytest.mark.parametrize("levels", [252, 253, 254, 255, 500, 1023, 5000])
def test_deep_messages_are_rejected_as_too_deep(levels):
    raw = {"type": "track", "userId": "u", "event": "E", "messageId": "deep",
           "properties": {"x": chain(levels)}}
    rej = run(raw)
    assert isinstance(rej, Rejection) and rej.reason == "too_deep" and rej.message_id == "deep"
    letter = dead_letter(raw)
    if levels >= 253:  # the dead letter's own level makes it too deep for orjson
        assert "not encodable" in letter["messageNote"]
        assert letter["message"]["messageId"] == "deep"


@settings(max_examples=300, deadline=None)
@given(st.recursive(st.none() | st.integers() | st.text(max_size=3),
                    lambda kids: st.lists(kids, max_size=3)
                    | st.dictionaries(st.text(max_size=2), kids, max_size=3), max_leaves=40))
def test_depth_walk_agrees_with_the_recursive_definition(value):
    for limit in range(0, 8):
        assert nests_deeper(value, limit) == (depth(value) > limit)


def test_bounded_copy_keeps_what_orjson_can_encode_and_notes_the_rest():
    copy = bounded_copy({"deep": chain(2000), "big": 2**80, "t": (1, 2), "s": {1}, 3: "k"})
    encoded = orjson.loads(orjson.dumps(copy))
    assert encoded["big"] == str(2**80) and encoded["t"] == [1, 2] and encoded["3"] == "k"
    assert "nested deeper than" in orjson.dumps(encoded).decode()


def test_dead_letters_are_cut_to_fit_a_kafka_record():
    raw = {"type": "track", "properties": {"x": [1e15] * 120_000}}  # ~2 MB once encoded
    letter = dead_letter(raw)
    assert isinstance(letter["message"], str) and letter["message"].startswith('{"type"')
    assert "cut" in letter["messageNote"]
    assert dead_letter({"n": 2**70})["message"] == {"n": str(2**70)}


# -- numbers of the event vocabulary -----------------------------------------------------

def order(**props):
    return {"type": "track", "userId": "u", "event": "Order Completed", "properties": props}


def line(**fields):
    return order(total=10, products=[{"product_id": "p", "price": 5, "quantity": 2, **fields}])


@pytest.mark.parametrize(("raw", "needle"), [
    (order(total=-5), "properties.total: must be a number from 0 to 1e+09, not -5"),
    (order(total=1e308), "not 1e+308"),
    (order(total=1e9 + 1), "properties.total"),
    (order(total=float("nan")), "finite"),
    (order(total=float("inf")), "finite"),
    (order(total=-float("inf")), "finite"),
    (order(total="12.50"), "must be a number, not a string"),
    (order(total="NaN"), "not a string"),
    (order(total="Infinity"), "not a string"),
    (order(total=True), "not true or false"),
    (order(total={"amount": 1}), "not an object"),
    (order(revenue=-1), "properties.revenue"),
    (order(discount=-0.01), "properties.discount"),
    (order(discount=[1]), "not an array"),
    (line(quantity=1e300), "properties.products[0].quantity: must be a number above 0"),
    (line(quantity=0), "products[0].quantity"),
    (line(quantity=-2), "products[0].quantity"),
    (line(quantity="2"), "products[0].quantity: must be a number, not a string"),
    (line(price=-5), "products[0].price"),
    (line(price=float("nan")), "products[0].price: must be a finite number"),
    (line(cost=2e9), "products[0].cost"),
    (order(products="p1"), "properties.products: must be an array of objects"),
    (order(products=[{"price": 1}, "p2"]), "products[1]: must be an object"),
    (order(products=[{"price": 1}] * 501), "more than 500 lines"),
    ({"type": "track", "userId": "u", "event": "Order Refunded",
      "properties": {"total": -20}}, "properties.total"),
    ({"type": "track", "userId": "u", "event": "Product Viewed",
      "properties": {"price": "9.99"}}, "properties.price"),
    ({"type": "track", "userId": "u", "event": "Product Added",
      "properties": {"price": 1, "quantity": 1e7}}, "properties.quantity"),
    ({"type": "track", "userId": "u", "event": "Call Ended",
      "properties": {"duration_s": -1}}, "properties.duration_s"),
    ({"type": "track", "userId": "u", "event": "Call Ended",
      "properties": {"duration_s": 1e12}}, "properties.duration_s"),
    ({"type": "track", "userId": "u", "event": "Survey Responded",
      "properties": {"nps": 11}}, "properties.nps: must be a number from 0 to 10, not 11"),
    ({"type": "track", "userId": "u", "event": "Survey Responded",
      "properties": {"nps": -1}}, "properties.nps"),
    ({"type": "track", "userId": "u", "event": "Survey Responded",
      "properties": {"nps": "9"}}, "properties.nps"),
])
def test_poison_numbers_are_rejected_with_a_reason(raw, needle):
    rej = run(raw)
    assert isinstance(rej, Rejection), rej
    assert rej.reason in ("invalid_number", "invalid_products")
    assert any(needle in e for e in rej.errors), rej.errors
    assert dead_letter(raw)["message"]["properties"] is not None


@pytest.mark.parametrize("raw", [
    order(total=CAPS.amount, revenue=0, discount=0.0, currency="EUR"),
    order(total=-0.0, products=[]),
    order(total=None, revenue=None),  # null is "not given", as Segment's SDKs drop undefined
    order(products=[{"price": 0, "quantity": CAPS.quantity, "cost": 0}] * CAPS.products),
    order(products=[{"product_id": "no numbers"}]),
    line(quantity=0.5, cost=3, anything=-1),
    {"type": "track", "userId": "u", "event": "Survey Responded", "properties": {"nps": 0}},
    {"type": "track", "userId": "u", "event": "Survey Responded", "properties": {"nps": 10}},
    {"type": "track", "userId": "u", "event": "Call Ended", "properties": {"duration_s": 0}},
    {"type": "track", "userId": "u", "event": "Refund Requested",
     "properties": {"total": -50, "quantity": "many"}},  # unknown events keep anything
    {"type": "page", "userId": "u", "properties": {"total": -5}},  # only track is ruled
])
def test_sane_numbers_unknown_events_and_extra_properties_stay_accepted(raw):
    assert isinstance(run(raw), Touchpoint)


def test_rejected_errors_are_listed_up_to_a_bound():
    rej = run(order(products=[{"price": -1, "quantity": -1}] * 100))
    assert len(rej.errors) == MAX_ERRORS + 1 and rej.errors[-1] == "... and 190 more errors"


_RULED = {
    "Order Completed": ("total", "revenue", "discount"),
    "Order Refunded": ("total",), "Product Viewed": ("price", "quantity"),
    "Product Added": ("price", "quantity"), "Call Ended": ("duration_s",),
    "Survey Responded": ("nps",),
}
_json = st.recursive(
    st.none() | st.booleans() | st.floats() | st.integers(-(2**70), 2**70) | st.text(max_size=5),
    lambda kids: st.lists(kids, max_size=4) | st.dictionaries(st.text(max_size=5), kids,
                                                              max_size=4), max_leaves=30)


@settings(max_examples=400, deadline=None)
@given(event=st.sampled_from([*_RULED, "Other"]),
       props=st.dictionaries(st.sampled_from(["total", "revenue", "discount", "price",
                                              "quantity", "duration_s", "nps", "products",
                                              "x"]), _json, max_size=5),
       lines=st.none() | st.lists(st.dictionaries(st.sampled_from(
           ["price", "cost", "quantity", "x"]), _json, max_size=4), max_size=4))
def test_any_properties_give_a_result_and_accepted_numbers_are_sane(event, props, lines):
    if lines is not None:
        props["products"] = lines
    result = run({"type": "track", "userId": "u", "event": event, "properties": props})
    assert isinstance(result, Touchpoint | Rejection)
    if isinstance(result, Rejection) or event == "Other":
        return
    for name in _RULED[event]:
        value = props.get(name)
        if value is not None:
            assert type(value) in (int, float) and math.isfinite(value) and value >= 0
            assert value <= (10 if name == "nps" else CAPS.amount)


# -- identifiers ---------------------------------------------------------------------------

@pytest.mark.parametrize("field", ["userId", "anonymousId", "previousId", "groupId"])
@pytest.mark.parametrize(("value", "cleaned"), [
    ("  u-1 ", "u-1"), ("\uff55\uff11", "u1"), ("\ufb01sh", "fish"), (42, "42"),
])
def test_ids_are_published_cleaned(field, value, cleaned):
    tp = run({"type": "alias", "userId": "u", "previousId": "p", field: value})
    assert isinstance(tp, Touchpoint), tp
    attr = {"userId": "user_id", "anonymousId": "anonymous_id", "previousId": "previous_id",
            "groupId": "group_id"}[field]
    assert getattr(tp, attr) == cleaned


@pytest.mark.parametrize("field", ["userId", "anonymousId", "previousId", "groupId"])
@pytest.mark.parametrize(("value", "needle"), [
    ("u\u200b1", "format or bidi character (U+200B)"),
    ("\u202eevil", "(U+202E)"),
    ("a\u2066b", "(U+2066)"),
    ("u\x00x", "control, format or bidi"),
    ("   ", "must not be empty"),
    ("x" * 257, "longer than 256"),
    (True, "must be a string"),
    (1.5, "string"),
])
def test_ids_failing_the_shared_rule_are_rejected_with_its_reason(field, value, needle):
    rej = run({"type": "alias", "userId": "u", "previousId": "p", field: value})
    assert isinstance(rej, Rejection) and rej.reason == "invalid_identifier"
    assert any(e.startswith(f"{field}: ") and needle in e for e in rej.errors), rej.errors


@settings(max_examples=500, deadline=None)
@given(st.text(alphabet=st.characters(codec="ascii"), max_size=300) | st.text(max_size=300))
def test_the_ascii_shortcut_is_the_shared_rule(value):
    try:
        expected = clean_unicode(value)
    except InvalidIdentifier as exc:
        with pytest.raises(InvalidIdentifier, match=re.escape(str(exc))):
            clean(value)
    else:
        assert clean(value) == expected


# -- batch context ---------------------------------------------------------------------------

def test_batch_context_is_checked_once_for_the_whole_request():
    assert read_batch_context(None) is None and read_batch_context({}) is None
    ok = read_batch_context({"library": {"name": "analytics-python"}})
    assert ok.size == len(orjson.dumps(ok.values))
    assert read_batch_context({"x": chain(MAX_DEPTH - 2)}) is not None
    for value, code in [([1], "invalid_context"), ("web", "invalid_context"),
                        ({"x": chain(MAX_DEPTH - 1)}, "context_too_deep"),
                        ({"x": chain(600)}, "context_too_deep"),
                        ({"x": "y" * MAX_BATCH_CONTEXT_BYTES}, "context_too_large"),
                        ({"x": "y" * 400_000}, "context_too_large"),
                        ({"n": 2**70}, "invalid_context")]:
        with pytest.raises(InvalidBatch) as caught:
            read_batch_context(value)
        assert caught.value.code == code and str(caught.value).startswith("context: ")
    with pytest.raises(InvalidBatch):  # a smaller message limit lowers the context's too
        read_batch_context({"x": "y" * 2000}, max_message_bytes=1024)


def test_a_message_counts_the_batch_context_it_will_carry():
    ctx = read_batch_context({"page": "p" * 7000})
    small = run({"type": "track", "userId": "u", "event": "E"}, batch_context=ctx)
    assert isinstance(small, Touchpoint) and small.context["page"] == "p" * 7000
    big = {"type": "track", "userId": "u", "event": "E", "properties": {"x": "y" * 26_000}}
    assert isinstance(run(big), Touchpoint)
    rej = run(big, batch_context=ctx)
    assert isinstance(rej, Rejection) and rej.reason == "too_large"
    assert "with the batch's context" in rej.errors[0]
    own = run({**big, "context": {"page": "mine"}}, batch_context=ctx)  # own keys win
    assert isinstance(own, Touchpoint) and own.context["page"] == "mine"


def test_a_channel_hint_of_any_json_type_falls_back_to_the_source_channel():
    for hint in ({}, [], ["web"], 1, None, "fax"):
        tp = run({"type": "page", "anonymousId": "a", "context": {"channel": hint}})
        assert tp.channel is Channel.WEB
