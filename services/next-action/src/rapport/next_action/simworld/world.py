"""The world: customers of five hidden kinds, an offer catalog, and the hidden
acceptance probabilities. Pure and seeded: the same seed gives the same customers,
the same touchpoints (up to the moment they are anchored to) and the same
probabilities.

The kinds reveal themselves only through behaviour:

- ``bargain``: view many discounted products, order small discounted baskets;
- ``loyal``: order often and recently, open their email;
- ``lapsing``: ordered long ago, file complaints and call about them;
- ``big_spender``: few orders with large totals;
- ``browser``: view a lot, rarely order.
"""

from __future__ import annotations

import math
import random
import uuid
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

KINDS = ("bargain", "loyal", "lapsing", "big_spender", "browser")
KIND_SHARES = (0.25, 0.20, 0.20, 0.10, 0.25)
CHANNELS = ("web", "email", "call_center", "mobile")

# The catalog in the next-action contract's format (PUT /v1/offers).
OFFERS: list[dict[str, Any]] = [
    {"offer_id": "sim.discount20", "name": "20% off your next order",
     "channels": ["web", "email", "mobile"], "value": 12.0, "cost": 0.5, "eligibility": []},
    {"offer_id": "sim.double_points", "name": "Double loyalty points this month",
     "channels": ["web", "email", "call_center", "mobile"], "value": 8.0, "cost": 0.3,
     "eligibility": []},
    {"offer_id": "sim.winback", "name": "We miss you: a voucher to come back",
     "channels": ["email", "call_center"], "value": 30.0, "cost": 1.0, "eligibility": []},
    {"offer_id": "sim.premium", "name": "Premium membership",
     "channels": ["web", "call_center", "mobile"], "value": 60.0, "cost": 1.5,
     "eligibility": []},
    {"offer_id": "sim.free_shipping", "name": "Free shipping this week",
     "channels": ["web", "mobile"], "value": 6.0, "cost": 0.2, "eligibility": []},
    {"offer_id": "sim.newsletter", "name": "Newsletter reminder (next to no action)",
     "channels": ["web", "email", "call_center", "mobile"], "value": 0.5, "cost": 0.01,
     "eligibility": []},
]
OFFER_BY_ID = {o["offer_id"]: o for o in OFFERS}

# Hidden base acceptance probability, kind x offer.
_BASE: dict[str, dict[str, float]] = {
    "bargain": {"sim.discount20": 0.30, "sim.double_points": 0.05, "sim.winback": 0.08,
                "sim.premium": 0.01, "sim.free_shipping": 0.25, "sim.newsletter": 0.05},
    "loyal": {"sim.discount20": 0.05, "sim.double_points": 0.35, "sim.winback": 0.02,
              "sim.premium": 0.08, "sim.free_shipping": 0.10, "sim.newsletter": 0.20},
    "lapsing": {"sim.discount20": 0.08, "sim.double_points": 0.03, "sim.winback": 0.20,
                "sim.premium": 0.01, "sim.free_shipping": 0.05, "sim.newsletter": 0.02},
    "big_spender": {"sim.discount20": 0.02, "sim.double_points": 0.05, "sim.winback": 0.03,
                    "sim.premium": 0.15, "sim.free_shipping": 0.05, "sim.newsletter": 0.05},
    "browser": {"sim.discount20": 0.04, "sim.double_points": 0.02, "sim.winback": 0.02,
                "sim.premium": 0.01, "sim.free_shipping": 0.08, "sim.newsletter": 0.10},
}
# How receptive each kind is on each channel (multiplies the base probability).
_CHANNEL: dict[str, dict[str, float]] = {
    "bargain": {"web": 1.0, "email": 0.8, "call_center": 0.5, "mobile": 1.2},
    "loyal": {"web": 1.0, "email": 1.3, "call_center": 0.8, "mobile": 1.0},
    "lapsing": {"web": 0.6, "email": 1.0, "call_center": 1.5, "mobile": 0.5},
    "big_spender": {"web": 1.0, "email": 0.7, "call_center": 1.4, "mobile": 0.9},
    "browser": {"web": 1.0, "email": 0.5, "call_center": 0.3, "mobile": 1.2},
}
CATEGORIES = ("shoes", "outerwear", "electronics", "home", "beauty", "sports")


@dataclass(frozen=True)
class Customer:
    index: int
    customer_id: str
    kind: str  # hidden: only the touchpoints show it
    seed: int
    taste: dict[str, float] = field(default_factory=dict)  # per-offer individual factor


def customers(n: int, seed: int) -> list[Customer]:
    rng = random.Random(f"customers:{seed}")
    out = []
    for i in range(n):
        kind = rng.choices(KINDS, weights=KIND_SHARES)[0]
        taste = {o["offer_id"]: math.exp(rng.gauss(0, 0.25)) for o in OFFERS}
        out.append(Customer(index=i, customer_id=f"sim{seed}-c{i:06d}", kind=kind,
                            seed=rng.getrandbits(64), taste=taste))
    return out


def accept_probability(customer: Customer, offer_id: str, channel: str) -> float:
    """The hidden chance the customer accepts the offer when shown it on the channel
    (0 where the offer is not made on that channel)."""
    offer = OFFER_BY_ID[offer_id]
    if channel not in offer["channels"]:
        return 0.0
    p = (_BASE[customer.kind][offer_id] * _CHANNEL[customer.kind][channel]
         * customer.taste.get(offer_id, 1.0))
    return min(0.95, max(0.0, p))


def expected_profit(customer: Customer, offer_id: str | None, channel: str) -> float:
    """p x value - cost of making the offer; 0 for making none."""
    if offer_id is None:
        return 0.0
    offer = OFFER_BY_ID[offer_id]
    return accept_probability(customer, offer_id, channel) * offer["value"] - offer["cost"]


def offers_on(channel: str) -> list[str]:
    return [o["offer_id"] for o in OFFERS if channel in o["channels"]]


def oracle_offer(customer: Customer, channel: str) -> str | None:
    """The offer maximising p x value - cost knowing the hidden probability (None when
    no offer's expected profit is positive: making none is then best)."""
    best, best_value = None, 0.0
    for offer_id in offers_on(channel):
        value = expected_profit(customer, offer_id, channel)
        if value > best_value:
            best, best_value = offer_id, value
    return best


_STATIC: dict[str, str | None] = {}


def best_static_offer(channel: str) -> str | None:
    """The one offer for the channel maximising the population's expected profit (the
    kinds' shares, individual taste averaging to its mean), None when none is positive."""
    if channel not in _STATIC:
        taste_mean = math.exp(0.25 ** 2 / 2)  # E[exp(N(0, 0.25))]
        best, best_value = None, 0.0
        for offer_id in offers_on(channel):
            offer = OFFER_BY_ID[offer_id]
            p = sum(share * min(0.95, _BASE[kind][offer_id] * _CHANNEL[kind][channel]
                                * taste_mean)
                    for kind, share in zip(KINDS, KIND_SHARES, strict=True))
            value = p * offer["value"] - offer["cost"]
            if value > best_value:
                best, best_value = offer_id, value
        _STATIC[channel] = best
    return _STATIC[channel]


# --- behaviour ------------------------------------------------------------------------


def _kind_behaviour(kind: str, rng: random.Random) -> dict[str, Any]:
    """How many of what, how long ago (days), for a kind."""
    if kind == "bargain":
        return {"views": rng.randint(15, 30), "view_days": 90, "sale_share": 0.85,
                "orders": rng.randint(3, 6), "order_days": (1, 180), "total": (12, 40),
                "discount": (0.15, 0.35), "complaints": 0, "opens": rng.randint(0, 3)}
    if kind == "loyal":
        return {"views": rng.randint(5, 12), "view_days": 60, "sale_share": 0.15,
                "orders": rng.randint(10, 20), "order_days": (1, 365), "total": (40, 90),
                "discount": (0, 0), "complaints": 0, "opens": rng.randint(5, 12)}
    if kind == "lapsing":
        return {"views": rng.randint(0, 3), "view_days": 400, "sale_share": 0.2,
                "orders": rng.randint(3, 6), "order_days": (300, 700), "total": (30, 80),
                "discount": (0, 0.1), "complaints": rng.randint(1, 3), "opens": 0}
    if kind == "big_spender":
        return {"views": rng.randint(4, 10), "view_days": 120, "sale_share": 0.0,
                "orders": rng.randint(3, 6), "order_days": (1, 200), "total": (300, 1500),
                "discount": (0, 0), "complaints": 0, "opens": rng.randint(1, 4)}
    return {"views": rng.randint(20, 40), "view_days": 60, "sale_share": 0.3,
            "orders": rng.randint(0, 1), "order_days": (1, 120), "total": (10, 50),
            "discount": (0, 0.05), "complaints": 0, "opens": rng.randint(0, 2)}


def touchpoints(customer: Customer, now: datetime | None = None) -> list[dict[str, Any]]:
    """The customer's history as Segment messages for ``POST /v1/batch``, every
    timestamp before ``now`` (default: the current time), oldest first."""
    now = (now or datetime.now(UTC)) - timedelta(minutes=1)
    rng = random.Random(customer.seed)
    b = _kind_behaviour(customer.kind, rng)
    uid = customer.customer_id
    msgs: list[tuple[datetime, dict[str, Any]]] = []

    def msg(mtype: str, ago_days: float, channel: str, **fields: Any) -> None:
        at = now - timedelta(days=ago_days)
        msgs.append((at, {"type": mtype, "userId": uid,
                          "messageId": uuid.UUID(int=rng.getrandbits(128)).hex,
                          "timestamp": at.isoformat(), "context": {"channel": channel},
                          **fields}))

    first = max(b["order_days"][1], b["view_days"]) + rng.uniform(5, 30)
    msg("identify", first, "web",
        traits={"email": f"{uid}@example.com", "region": rng.choice(("north", "south")),
                "consent": {"marketing_email": True, "marketing_sms": True,
                            "personalization": True}})
    favourite = rng.choice(CATEGORIES)
    for _ in range(b["views"]):
        on_sale = rng.random() < b["sale_share"]
        price = round(rng.uniform(10, 200), 2)
        props: dict[str, Any] = {"product_id": f"{favourite[:3]}-{rng.randint(1, 300):04d}",
                                 "category": favourite, "price": price}
        if on_sale:
            props["discount"] = round(price * rng.uniform(0.15, 0.4), 2)
            props["on_sale"] = True
        msg("track", rng.uniform(0, b["view_days"]), rng.choice(("web", "mobile")),
            event="Product Viewed", properties=props)
    for _ in range(b["orders"]):
        total = round(rng.uniform(*b["total"]), 2)
        qty = rng.randint(1, 3)
        props = {"order_id": uuid.UUID(int=rng.getrandbits(128)).hex[:16], "total": total,
                 "revenue": total, "currency": "USD",
                 "products": [{"product_id": f"{favourite[:3]}-{rng.randint(1, 300):04d}",
                               "category": favourite, "price": round(total / qty, 2),
                               "quantity": qty}]}
        discount = round(total * rng.uniform(*b["discount"]), 2)
        if discount:
            props["discount"] = discount
        msg("track", rng.uniform(*b["order_days"]), rng.choice(("web", "mobile")),
            event="Order Completed", properties=props)
    for _ in range(b["complaints"]):
        ago = rng.uniform(b["order_days"][0], b["order_days"][0] + 60)
        msg("track", ago + 0.01, "call_center", event="Call Started",
            properties={"reason": "complaint"})
        msg("track", ago, "call_center", event="Complaint Filed", properties={})
    for _ in range(b["opens"]):
        ago = rng.uniform(0, 90)
        msg("track", ago + 0.01, "email", event="Email Delivered", properties={})
        msg("track", ago, "email", event="Email Opened", properties={})
    msgs.sort(key=lambda m: m[0])
    return [m for _, m in msgs]


def orders_in(messages: list[dict[str, Any]]) -> int:
    return sum(1 for m in messages if m.get("event") == "Order Completed")
