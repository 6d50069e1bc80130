"""The attribution store against the real Redis (single and cluster): an order heard
before its decision (the decision log trails the order facts: two topics, and the log's
send is not awaited) is still attributed, once, when the decision's window opens."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta

import pytest

from rapport.next_action.attribution import Window
from rapport.next_action.attribution_store import AttributionStore
from rapport.shared import keys
from rapport.shared.events import OrderFact

CLUSTER = True
DB = 13                # the shared ``redis`` fixture's database (when not on the cluster)
WINDOW_S, GRACE_S = 60.0, 30.0
T0 = datetime.now(UTC).replace(microsecond=0)


@pytest.fixture
def store(redis):
    return AttributionStore(redis, window_s=WINDOW_S, grace_s=GRACE_S, margin_rate=0.3)


def window(customer: str, at: datetime) -> Window:
    return Window(decision_id=uuid.uuid4().hex, customer=customer, decided_at=at.timestamp(),
                  group="treatment", policy_id="p", tier=None, segment=None, made="d20",
                  held_out=None, cost=0.5, chances={"d20": 1.0}, uplift={}, features=None)


def order(customer: str, at: datetime, revenue: float = 100.0, kind: str = "order",
          order_id: str | None = None, message: str | None = None) -> OrderFact:
    return OrderFact(kind=kind, customer=customer, message_id=message or uuid.uuid4().hex,
                     order_id=order_id, occurred_at=at, revenue=revenue)


async def windows(store: AttributionStore, *ws: Window) -> list[Window]:
    return await store.close([(w.customer, w.decision_id) for w in ws])


async def test_an_order_heard_before_its_decision_is_taken_when_the_window_opens(store):
    who = f"fp-{uuid.uuid4().hex[:8]}"
    w = window(who, T0)
    first = order(who, T0 + timedelta(seconds=2), order_id=f"o-{who}")
    assert [c.result for c in await store.count([first])] == ["unattributed"]

    opened = await store.open([w], T0.timestamp() + 3)
    assert (opened.windows, opened.claimed) == (1, 1)
    # heard again, the order changes nothing; its refund follows it to the decision
    again, refund = await store.count([first, order(who, T0 + timedelta(seconds=5), 40.0,
                                                     "refund", order_id=f"o-{who}")])
    assert again.result == "duplicate"
    assert (refund.result, refund.decision_id) == ("attributed", w.decision_id)
    # the log replayed: nothing opened or taken twice
    assert await store.open([w], T0.timestamp() + 4) == type(opened)(0, 0)
    [closed] = await windows(store, w)
    assert (closed.orders, closed.refunds) == (1, 1)
    assert closed.revenue == pytest.approx(100.0)
    assert closed.margin == pytest.approx(30.0 - 12.0)


async def test_only_orders_within_the_window_after_the_decision_are_taken(store):
    who = f"fp-{uuid.uuid4().hex[:8]}"
    w = window(who, T0)
    before, inside, after = (order(who, T0 + timedelta(seconds=s)) for s in (-5, 10, 70))
    await store.count([before, inside, after])
    assert (await store.open([w], T0.timestamp() + 71)).claimed == 1
    [closed] = await windows(store, w)
    assert closed.orders == 1


async def test_a_waiting_order_goes_to_the_most_recent_decision_before_it(store):
    who = f"fp-{uuid.uuid4().hex[:8]}"
    early, late = window(who, T0), window(who, T0 + timedelta(seconds=10))
    between, after_both = order(who, T0 + timedelta(seconds=5)), \
        order(who, T0 + timedelta(seconds=20))
    await store.count([between, after_both])
    opened = await store.open([early, late], T0.timestamp() + 21)  # the log's order
    assert (opened.windows, opened.claimed) == (2, 2)
    by_id = {w.decision_id: w for w in await windows(store, early, late)}
    assert (by_id[early.decision_id].orders, by_id[late.decision_id].orders) == (1, 1)


async def test_an_order_waits_no_longer_than_a_window_can_open(store, redis):
    who = f"fp-{uuid.uuid4().hex[:8]}"
    old = order(who, T0 - timedelta(seconds=WINDOW_S + GRACE_S + 10))
    await store.count([old, order(who, T0)])
    held = await redis.zcard(keys.attribution_pending(who))
    assert held == 1  # the old one was let go when the newer one came
