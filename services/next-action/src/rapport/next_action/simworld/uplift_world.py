"""A world where what matters is what an offer changes: customers of four hidden kinds
who buy in a decision's attribution window with a probability that depends on the offer
made (or none), revealed only through their Segment histories.

- ``loyal``: buy anyway, with or without an offer (a discount only cuts the margin; a
  thank-you message helps a little); many recent orders, no discounts, open email;
- ``persuadable``: buy mostly when given a discount; discounted orders, open email;
- ``sleeping_dog``: buy less when contacted at all; complaints, unsubscribes;
- ``lost``: rarely buy either way; one old order.

A ``noise_share`` of customers show another kind's history, and counts vary, so the
kinds overlap in features. Pure and seeded: the same seed gives the same customers,
touchpoints (up to the moment they are anchored to) and, with the same draws, responses.
"""

from __future__ import annotations

import math
import random
import uuid
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

KINDS = ("loyal", "persuadable", "sleeping_dog", "lost")
CHANNELS = ("web", "email", "mobile")
OFFERS: list[dict[str, Any]] = [
    {"offer_id": "discount20", "name": "20% off your next order", "kind": "discount",
     "value": 0.20, "cost": 0.10, "channels": list(CHANNELS), "eligibility": []},
    {"offer_id": "retention10", "name": "We'd like you back: 10% off", "kind": "retention",
     "value": 0.10, "cost": 0.10, "channels": list(CHANNELS), "eligibility": []},
    {"offer_id": "recognition", "name": "Thank you for being with us", "kind": "message",
     "value": 0.0, "cost": 0.05, "channels": list(CHANNELS), "eligibility": []},
]
OFFER_BY_ID = {o["offer_id"]: o for o in OFFERS}
OFFER_IDS = tuple(OFFER_BY_ID)


def _table() -> dict[str, dict[str, float]]:
    return {  # P(buy in the window | kind, offer), "none" for no offer
        "loyal": {"none": 0.50, "discount20": 0.52, "retention10": 0.51, "recognition": 0.53},
        "persuadable": {"none": 0.05, "discount20": 0.45, "retention10": 0.25,
                        "recognition": 0.06},
        "sleeping_dog": {"none": 0.30, "discount20": 0.10, "retention10": 0.10,
                         "recognition": 0.10},
        "lost": {"none": 0.02, "discount20": 0.03, "retention10": 0.06, "recognition": 0.02},
    }


@dataclass(frozen=True)
class Params:
    shares: tuple[float, ...] = (0.30, 0.25, 0.15, 0.30)
    """The kinds' shares, in ``KINDS`` order."""
    p_buy: dict[str, dict[str, float]] = field(default_factory=_table)
    basket: dict[str, float] = field(default_factory=lambda: {
        "loyal": 60.0, "persuadable": 40.0, "sleeping_dog": 50.0, "lost": 40.0})
    """Mean basket (order revenue before discount) per kind."""
    cogs: float = 0.5
    """Cost of goods as a share of the basket."""
    noise_share: float = 0.1
    """Share of customers whose history is drawn as another kind's."""
    taste_sd: float = 0.2
    """Log-sd of a customer's factor on every buy probability (the kind's effect signs hold)."""
    basket_sd: float = 0.3
    """Log-sd of a customer's mean basket around the kind's, and of a basket around it."""


@dataclass(frozen=True)
class Customer:
    index: int
    customer_id: str
    kind: str  # hidden: what they do
    look: str  # hidden: whose history they show (their kind, but for the noise share)
    seed: int
    p_buy: dict[str, float]  # "none" and each offer
    basket: float


def customers(n: int, seed: int, params: Params = Params()) -> list[Customer]:
    rng = random.Random(f"uplift-customers:{seed}")
    out = []
    for i in range(n):
        kind = rng.choices(KINDS, weights=params.shares)[0]
        look = rng.choice(KINDS) if rng.random() < params.noise_share else kind
        f = math.exp(rng.gauss(0, params.taste_sd))
        p = {a: min(0.95, q * f) for a, q in params.p_buy[kind].items()}
        basket = params.basket[kind] * math.exp(rng.gauss(0, params.basket_sd))
        out.append(Customer(i, f"up{seed}-c{i:06d}", kind, look, rng.getrandbits(64), p,
                            basket))
    return out


def _discount_share(offer_id: str | None) -> float:
    offer = OFFER_BY_ID.get(offer_id or "")
    return float(offer["value"]) if offer and offer["kind"] in ("discount", "retention") \
        else 0.0


def respond(customer: Customer, offer_id: str | None, rng: random.Random,
            params: Params = Params()) -> tuple[bool, float, float]:
    """One attribution window after a decision that made ``offer_id`` (None: none):
    whether they bought, the basket (revenue before discount, 0 if not) and the discount."""
    if rng.random() >= customer.p_buy[offer_id or "none"]:
        return False, 0.0, 0.0
    s = params.basket_sd
    basket = round(customer.basket * math.exp(rng.gauss(-s * s / 2, s)), 2)
    return True, basket, round(basket * _discount_share(offer_id), 2)


def margin(basket: float, discount: float, params: Params = Params()) -> float:
    """Revenue - cost of goods - discount (the offer's own cost not included)."""
    return basket - discount - params.cogs * basket


def expected_margin(customer: Customer, offer_id: str | None,
                    params: Params = Params()) -> float:
    """E[margin in the window | offer], the purchase probability included."""
    share = 1.0 - _discount_share(offer_id) - params.cogs
    return customer.p_buy[offer_id or "none"] * share * customer.basket


def true_uplift(customer: Customer, params: Params = Params()) -> dict[str, float]:
    """Per offer, the true incremental margin over making none (offer cost not included)."""
    base = expected_margin(customer, None, params)
    return {o: expected_margin(customer, o, params) - base for o in OFFER_IDS}


def true_profit(customer: Customer, offer_id: str | None, params: Params = Params()) -> float:
    """Incremental expected profit of making the offer: uplift - its cost (0 for none)."""
    if offer_id is None:
        return 0.0
    return true_uplift(customer, params)[offer_id] - float(OFFER_BY_ID[offer_id]["cost"])


def oracle_offer(customer: Customer, params: Params = Params()) -> str | None:
    """The offer of the highest true incremental profit, None when none is positive."""
    best, value = None, 0.0
    for o in OFFER_IDS:
        v = true_profit(customer, o, params)
        if v > value:
            best, value = o, v
    return best


def _history(look: str, rng: random.Random) -> dict[str, Any]:
    """How many of what, how long ago (days), for the kind a history shows."""
    if look == "loyal":
        return {"orders": rng.randint(6, 20), "order_days": (1, 300),
                "discounted": rng.choice((0.0, 0.0, 0.0, 0.1)), "delivered": 10,
                "opens": rng.randint(3, 8), "complaints": 0, "unsubscribe": False}
    if look == "persuadable":
        return {"orders": rng.randint(2, 6), "order_days": (5, 250),
                "discounted": rng.uniform(0.6, 1.0), "delivered": 10,
                "opens": rng.randint(4, 10), "complaints": 0, "unsubscribe": False}
    if look == "sleeping_dog":
        return {"orders": rng.randint(2, 8), "order_days": (20, 400),
                "discounted": rng.uniform(0.0, 0.2), "delivered": 8,
                "opens": rng.randint(0, 2), "complaints": rng.choice((0, 1, 2, 3)),
                "unsubscribe": rng.random() < 0.6}
    return {"orders": 1, "order_days": (300, 900), "discounted": rng.choice((0.0, 1.0)),
            "delivered": rng.randint(0, 6), "opens": 0, "complaints": 0,
            "unsubscribe": rng.random() < 0.2}


def touchpoints(customer: Customer, now: datetime) -> list[dict[str, Any]]:
    """The customer's history as Segment messages for ``POST /v1/batch``, every timestamp
    before ``now``, oldest first."""
    now = now - timedelta(minutes=1)
    rng = random.Random(customer.seed)
    h = _history(customer.look, rng)
    uid = customer.customer_id
    msgs: list[tuple[datetime, dict[str, Any]]] = []

    def msg(mtype: str, ago_days: float, channel: str, **fields: Any) -> None:
        at = now - timedelta(days=ago_days)
        msgs.append((at, {"type": mtype, "userId": uid,
                          "messageId": uuid.UUID(int=rng.getrandbits(128)).hex,
                          "timestamp": at.isoformat(), "context": {"channel": channel},
                          **fields}))

    msg("identify", h["order_days"][1] + rng.uniform(5, 30), "web",
        traits={"email": f"{uid}@example.com",
                "consent": {"marketing_email": True, "personalization": True}})
    for _ in range(h["orders"]):
        total = round(customer.basket * math.exp(rng.gauss(0, 0.3)), 2)
        props: dict[str, Any] = {
            "order_id": uuid.UUID(int=rng.getrandbits(128)).hex[:16], "total": total,
            "revenue": total, "currency": "USD",
            "products": [{"product_id": f"p-{rng.randint(1, 500):04d}", "price": total,
                          "quantity": 1}]}
        if rng.random() < h["discounted"]:
            props["discount"] = round(total * rng.uniform(0.15, 0.3), 2)
        msg("track", rng.uniform(*h["order_days"]), rng.choice(("web", "mobile")),
            event="Order Completed", properties=props)
    opened = set(rng.sample(range(h["delivered"]), min(h["opens"], h["delivered"])))
    for i in range(h["delivered"]):
        ago = rng.uniform(1, 120)
        msg("track", ago + 0.01, "email", event="Email Delivered", properties={})
        if i in opened:
            msg("track", ago, "email", event="Email Opened", properties={})
    for _ in range(h["complaints"]):
        msg("track", rng.uniform(10, 200), "call_center", event="Complaint Filed",
            properties={})
    if h["unsubscribe"]:
        msg("track", rng.uniform(1, 100), "email", event="Unsubscribed", properties={})
    msgs.sort(key=lambda m: m[0])
    return [m for _, m in msgs]
