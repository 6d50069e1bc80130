"""The simulated world itself (pure): seeded, consistent, and its baselines ordered."""

from datetime import UTC, datetime

from rapport.next_action.catalog import Catalog
from rapport.next_action.simworld import world


def test_the_world_is_seeded():
    a, b = world.customers(50, 3), world.customers(50, 3)
    assert a == b
    assert [c.kind for c in a] != [c.kind for c in world.customers(50, 4)]
    now = datetime(2026, 1, 1, tzinfo=UTC)
    assert world.touchpoints(a[7], now) == world.touchpoints(b[7], now)


def test_the_catalog_is_one_the_service_accepts():
    catalog = Catalog(offers=world.OFFERS)
    assert len(catalog.offers) == 6


def test_touchpoints_are_past_and_probabilities_respect_channels():
    now = datetime(2026, 1, 1, tzinfo=UTC)
    for c in world.customers(100, 1):
        msgs = world.touchpoints(c, now)
        assert all(datetime.fromisoformat(m["timestamp"]) < now for m in msgs)
        assert all(m["userId"] == c.customer_id for m in msgs)
        for offer in world.OFFERS:
            for channel in world.CHANNELS:
                p = world.accept_probability(c, offer["offer_id"], channel)
                assert 0 <= p <= 0.95
                if channel not in offer["channels"]:
                    assert p == 0


def test_the_oracle_is_never_worse_than_the_best_static_offer():
    for c in world.customers(300, 2):
        for channel in world.CHANNELS:
            oracle = world.expected_profit(c, world.oracle_offer(c, channel), channel)
            static = world.expected_profit(c, world.best_static_offer(channel), channel)
            assert oracle >= max(static, 0)
