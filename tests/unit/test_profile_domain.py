from datetime import UTC, datetime, timedelta

from hypothesis import given, settings
from hypothesis import strategies as st

from rapport.profile.domain import affinities_at, apply, number
from rapport.shared.events import Channel, MessageType, Touchpoint
from rapport.shared.profiles import CustomerProfile

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


def test_margin_units_email_and_nps():
    p = fold([
        tp(1, "Order Completed", props={"total": 100, "products": [
            {"product_id": "a", "category": "shoes", "price": 30.0, "quantity": 2, "cost": 20.0},
            {"product_id": "b", "category": "home", "price": 40.0, "quantity": 1}]}),
        tp(2, "Email Delivered", channel=Channel.EMAIL), tp(3, "Email Opened"),
        tp(4, "Email Link Clicked"), tp(5, "Unsubscribed"),
        tp(6, "Survey Responded", props={"nps": 9}), tp(7, "Survey Responded", props={"nps": 3}),
        tp(8, "Call Ended", props={"duration_s": 300}), tp(9, "Ticket Created")])
    m = p.metrics
    assert (m.units, m.margin, m.margin_revenue) == (3, 20.0, 60.0)
    assert (m.emails_delivered, m.emails_opened, m.emails_clicked) == (1, 1, 1)
    assert m.unsubscribed_at == T0 + timedelta(minutes=5)
    assert (m.nps_responses, m.nps_sum, m.last_nps) == (2, 12.0, 3.0)
    assert (m.call_seconds, m.tickets, m.service_contacts) == (300.0, 1, 1)


def test_a_resent_touchpoint_is_not_counted_twice():
    order = tp(1, "Order Completed", props={"total": 10})
    p = fold([order, tp(2), order])
    assert (p.metrics.orders, p.metrics.touchpoints) == (1, 2)


def test_consents_keep_the_latest_decision():
    later = tp(2, mtype=MessageType.IDENTIFY, event=None,
               traits={"consent": {"marketing_email": False}})
    earlier = tp(1, mtype=MessageType.IDENTIFY, event=None,
                 traits={"consent": {"marketing_email": True, "marketing_sms": True}})
    for order in ([earlier, later], [later, earlier]):
        p = fold(order)
        assert p.consents["marketing_email"].value is False
        assert p.consents["marketing_sms"].value is True


def test_affinities_decay_with_event_time():
    old = tp(1, "Product Viewed", props={"category": "toys"}, at=T0 - timedelta(days=60))
    new = tp(2, "Product Added", props={"category": "shoes"}, at=T0)
    p = fold([old, new])
    assert affinities_at(p, T0) == {"shoes": 3.0, "toys": 0.25}
    assert affinities_at(p, T0 + timedelta(days=30)) == {"shoes": 1.5, "toys": 0.125}


def test_same_instant_trait_values_settle_the_same_way_in_any_order():
    a = tp(1, mtype=MessageType.IDENTIFY, event=None, traits={"region": "north"}, at=T0)
    b = tp(2, mtype=MessageType.IDENTIFY, event=None, traits={"region": "south"}, at=T0)
    assert fold([a, b]).traits == fold([b, a]).traits


rich_events = st.lists(st.tuples(
    st.sampled_from(["Order Completed", "Order Refunded", "Product Viewed", "Product Added",
                     "Call Started", "Survey Responded", "Email Opened", "identify"]),
    st.integers(0, 100_000), st.sampled_from(list(Channel)),
    st.floats(0, 1000, allow_nan=False).map(lambda x: round(x, 2)),
    st.sampled_from(["shoes", "home", "toys"]), st.booleans()), min_size=1, max_size=25)


def rich(i, e, minute, channel, value, category, flag):
    at = T0 + timedelta(minutes=minute)
    if e == "identify":
        return tp(i, mtype=MessageType.IDENTIFY, event=None, channel=channel, at=at,
                  traits={"region": category, "consent": {"marketing_email": flag}})
    return tp(i, e, channel=channel, at=at, props={
        "total": value, "nps": int(value) % 11, "category": category,
        "products": [{"category": category, "price": value, "quantity": 1, "cost": value / 2}]})


@settings(max_examples=150, deadline=None)
@given(rich_events, st.randoms())
def test_everything_a_reader_sees_is_independent_of_arrival_order(evs, rnd):
    items = [rich(i, *e) for i, e in enumerate(evs)]
    shuffled = list(items)
    rnd.shuffle(shuffled)
    a, b = fold(items), fold(shuffled)
    assert a.metrics == b.metrics  # money is summed in whole cents: exactly equal
    assert (a.traits, a.consents, a.channels) == (b.traits, b.consents, b.channels)
    assert set(a.identities) == set(b.identities)
    fa, fb = affinities_at(a, T0), affinities_at(b, T0)
    assert fa.keys() == fb.keys() and all(abs(fa[k] - fb[k]) < 1e-3 for k in fa)


@settings(max_examples=50, deadline=None)
@given(rich_events)
def test_the_compact_stored_form_reads_back_the_same_profile(evs):
    p = fold([rich(i, *e) for i, e in enumerate(evs)])
    stored = p.to_stored()
    assert CustomerProfile.from_bytes(stored) == p == CustomerProfile.from_bytes(p.to_bytes())
    assert len(stored) < len(p.to_bytes())


def test_apply_leaves_the_given_profile_untouched():
    before = fold([tp(1, "Order Completed", props={"total": 10})])
    snapshot = before.model_dump()
    after = apply(before, tp(2, "Order Completed", props={"total": 5}), customer_id="u1",
                  processed_at=T0)
    assert before.model_dump() == snapshot and after.metrics.revenue == 15.0


def test_an_order_is_worth_its_revenue_else_its_total_else_its_lines():
    from rapport.profile.domain import order_value
    assert order_value({"revenue": 90.0, "total": 100.0}) == 90.0
    assert order_value({"total": 100.0}) == 100.0
    assert order_value({"products": [{"price": 12.5, "quantity": 2}, {"price": 5},
                                     "junk", {"price": "x"}]}) == 30.0
    assert order_value({"revenue": True, "total": 7}) == 7.0
    assert order_value({}) == 0.0
