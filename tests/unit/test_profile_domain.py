from datetime import UTC, datetime, timedelta

from hypothesis import given, settings
from hypothesis import strategies as st

from rapport.profile.domain import apply, number
from rapport.shared.events import Channel, MessageType, Touchpoint

T0 = datetime(2026, 1, 1, tzinfo=UTC)


def tp(i=0, event="Product Viewed", mtype=MessageType.TRACK, channel=Channel.WEB, props=None,
       traits=None, at=None, **ids):
    return Touchpoint(message_id=f"m{i}", source="s", type=mtype, event=event, channel=channel,
                      timestamp=at or T0 + timedelta(minutes=i), received_at=T0,
                      properties=props or {}, traits=traits or {}, user_id=ids.get("user", "u1"),
                      anonymous_id=ids.get("anon"))


def fold(events):
    p = None
    for e in events:
        p = apply(p, e, customer_id="u1", processed_at=T0)
    return p


def test_orders_refunds_and_service_contacts_are_counted():
    p = fold([tp(1, "Order Completed", props={"revenue": 90.0, "total": 100, "discount": 10}),
              tp(2, "Order Completed", props={"total": 50}),
              tp(3, "Order Refunded", props={"total": 50}),
              tp(4, "Call Started", channel=Channel.CALL_CENTER),
              tp(5, "Complaint Filed", channel=Channel.CALL_CENTER)])
    m = p.metrics
    assert (m.orders, m.revenue, m.discounts) == (2, 140.0, 10.0)
    assert (m.returns, m.returned_value, m.service_contacts) == (1, 50.0, 2)
    assert m.touchpoints == 5
    assert p.channels["web"].count == 3 and p.channels["call_center"].count == 2
    assert m.first_order_at == T0 + timedelta(minutes=1)
    assert m.last_order_at == T0 + timedelta(minutes=2)


def test_identities_are_collected_once_and_normalised():
    p = fold([tp(1, mtype=MessageType.IDENTIFY, event=None, anon="a1",
                 traits={"email": " Ann@Example.COM ", "phone": "+1 (555) 010"}),
              tp(2, anon="a1")])
    assert {(i.type, i.value) for i in p.identities} == {
        ("user_id", "u1"), ("anonymous_id", "a1"), ("email", "ann@example.com"),
        ("phone", "+1555010")}


def test_a_late_trait_never_overwrites_a_newer_one():
    newer = tp(2, mtype=MessageType.IDENTIFY, event=None, traits={"region": "north"})
    older = tp(1, mtype=MessageType.IDENTIFY, event=None, traits={"region": "south"})
    assert fold([newer, older]).traits["region"] == "north"
    assert fold([older, newer]).traits["region"] == "north"


def test_bad_numbers_never_poison_sums():
    assert [number(v) for v in (float("nan"), float("inf"), "12", True, None, 3)] == \
        [0, 0, 0, 0, 0, 3.0]


events = st.lists(st.tuples(
    st.sampled_from(["Order Completed", "Order Refunded", "Product Viewed", "Call Started"]),
    st.integers(0, 10_000), st.sampled_from(list(Channel)),
    st.floats(0, 1000, allow_nan=False).map(lambda x: round(x, 2))), min_size=1, max_size=30)


@settings(max_examples=150, deadline=None)
@given(events, st.randoms())
def test_arrival_order_does_not_change_the_profile(evs, rnd):
    items = [tp(i, e, channel=c, props={"total": v}, at=T0 + timedelta(minutes=m))
             for i, (e, m, c, v) in enumerate(evs)]
    shuffled = list(items)
    rnd.shuffle(shuffled)
    a, b = fold(items), fold(shuffled)
    assert a.metrics.model_dump(exclude={"revenue", "returned_value"}) == \
        b.metrics.model_dump(exclude={"revenue", "returned_value"})
    assert abs(a.metrics.revenue - b.metrics.revenue) < 0.05
    assert a.channels == b.channels
