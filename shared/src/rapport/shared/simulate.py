"""A stream of realistic touchpoints for a population of customers across
channels: browsing, search, carts, orders, refunds, calls, email, store visits
with loyalty cards, and identity events that link them.

``Population`` is pure and seeded (same seed, same stream); ``send`` posts
batches to ingest as a Segment SDK would. Most customers stay anonymous until
they log in, so the first batch always identifies one of them by ``userId``
(``Population.showcase``): a customer that examples can name from the start.
"""

from __future__ import annotations

import asyncio
import random
import time
import uuid
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import httpx
from rich.progress import BarColumn, Progress, TextColumn, TimeElapsedColumn

CATEGORIES = {
    "shoes": (40, 180), "outerwear": (60, 400), "electronics": (30, 1500), "home": (10, 300),
    "beauty": (8, 90), "toys": (10, 120), "grocery": (2, 40), "sports": (15, 500),
}
REGIONS = ("north", "south", "east", "west", "central")
CALL_REASONS = ("delivery", "billing", "returns", "product_question", "complaint")


@dataclass
class Customer:
    index: int
    user_id: str
    anonymous_id: str
    email: str
    phone: str
    loyalty_id: str
    region: str
    favourite: str
    activity: float  # relative propensity to act
    known: bool = False


class Population:
    def __init__(self, customers: int = 3000, seed: int = 7) -> None:
        self.rng = random.Random(seed)
        cats = list(CATEGORIES)
        self.customers = [
            Customer(index=i, user_id=f"u{i:06d}",
                     anonymous_id=f"anon-{uuid.UUID(int=self.rng.getrandbits(128)).hex[:16]}",
                     email=f"customer{i}@example.com", phone=f"+1555{i:07d}",
                     loyalty_id=f"L{i:08d}", region=self.rng.choice(REGIONS),
                     favourite=self.rng.choice(cats), activity=self.rng.paretovariate(1.5))
            for i in range(customers)
        ]
        self.weights = [c.activity for c in self.customers]
        self.orders = 0
        self.showcase = self.customers[0]
        self._introduced = False

    def _product(self, c: Customer) -> dict[str, Any]:
        cat = c.favourite if self.rng.random() < 0.6 else self.rng.choice(list(CATEGORIES))
        lo, hi = CATEGORIES[cat]
        price = round(self.rng.uniform(lo, hi), 2)
        return {"product_id": f"{cat[:3]}-{self.rng.randint(1, 400):04d}", "category": cat,
                "price": price, "brand": self.rng.choice(("acme", "globex", "initech", "umbra"))}

    def _msg(self, c: Customer, mtype: str, channel: str, now: datetime,
             **fields: Any) -> dict[str, Any]:
        msg: dict[str, Any] = {"type": mtype, "messageId": uuid.UUID(
            int=self.rng.getrandbits(128)).hex, "timestamp": now.isoformat(),
            "context": {"channel": channel}}
        if c.known or channel in ("call_center", "store", "email"):
            msg["userId"] = c.user_id
        if channel in ("web", "mobile"):
            msg["anonymousId"] = c.anonymous_id
        if "userId" not in msg and "anonymousId" not in msg:
            msg["userId"] = c.user_id
        msg.update(fields)
        return msg

    def journey(self, now: datetime) -> list[dict[str, Any]]:
        """One customer's next few touchpoints."""
        c = self.rng.choices(self.customers, weights=self.weights)[0]
        r = self.rng.random()
        out: list[dict[str, Any]] = []
        if r < 0.55:  # a web or app session
            channel = "web" if self.rng.random() < 0.6 else "mobile"
            out.append(self._msg(c, "page" if channel == "web" else "screen", channel, now,
                                 name=self.rng.choice(("Home", "Category", "Deals"))))
            if self.rng.random() < 0.3:
                out.append(self._msg(c, "track", channel, now, event="Products Searched",
                                     properties={"query": c.favourite}))
            product = self._product(c)
            out.append(self._msg(c, "track", channel, now, event="Product Viewed",
                                 properties=product))
            if self.rng.random() < 0.35:
                out.append(self._msg(c, "track", channel, now, event="Product Added",
                                     properties={**product, "quantity": 1}))
                if not c.known and self.rng.random() < 0.7:
                    c.known = True
                    out.append(self._msg(c, "identify", channel, now, traits={
                        "email": c.email, "region": c.region, "name": f"Customer {c.index}",
                        "consent": {"marketing_email": self.rng.random() < 0.7,
                                    "marketing_sms": self.rng.random() < 0.4,
                                    "personalization": True}}))
                if c.known and self.rng.random() < 0.5:
                    out.append(self._msg(c, "track", channel, now, event="Checkout Started",
                                         properties={"value": product["price"]}))
                    out.append(self._order(c, channel, now, [product]))
        elif r < 0.70:  # email
            out.append(self._msg(c, "track", "email", now, event="Email Delivered",
                                 properties={"campaign": "weekly"}))
            if self.rng.random() < 0.35:
                out.append(self._msg(c, "track", "email", now, event="Email Opened",
                                     properties={"campaign": "weekly"}))
                if self.rng.random() < 0.25:
                    out.append(self._msg(c, "track", "email", now, event="Email Link Clicked",
                                         properties={"campaign": "weekly"}))
        elif r < 0.85:  # store purchase with a loyalty card
            c.known = True
            products = [self._product(c) for _ in range(self.rng.randint(1, 3))]
            out.append(self._msg(c, "identify", "store", now,
                                 traits={"loyalty_id": c.loyalty_id, "region": c.region}))
            out.append(self._order(c, "store", now, products))
        elif r < 0.95:  # call center
            c.known = True
            out.append(self._msg(c, "identify", "call_center", now, traits={"phone": c.phone}))
            out.append(self._msg(c, "track", "call_center", now, event="Call Started",
                                 properties={"reason": self.rng.choice(CALL_REASONS)}))
            out.append(self._msg(c, "track", "call_center", now, event="Call Ended",
                                 properties={"duration_s": self.rng.randint(60, 1200),
                                             "resolved": self.rng.random() < 0.8}))
            if self.rng.random() < 0.1:
                out.append(self._msg(c, "track", "call_center", now, event="Complaint Filed",
                                     properties={}))
            if self.rng.random() < 0.3:
                out.append(self._msg(c, "track", "call_center", now, event="Survey Responded",
                                     properties={"nps": self.rng.randint(0, 10)}))
        else:  # a refund
            c.known = True
            out.append(self._msg(c, "track", "web", now, event="Order Refunded",
                                 properties={"order_id": f"o{self.rng.randint(1, 10**6)}",
                                             "total": round(self.rng.uniform(10, 200), 2)}))
        return out

    def _order(self, c: Customer, channel: str, now: datetime,
               products: list[dict[str, Any]]) -> dict[str, Any]:
        self.orders += 1
        lines = [{**p, "quantity": 1, "cost": round(p["price"] * 0.6, 2)} for p in products]
        total = round(sum(p["price"] for p in lines), 2)
        discount = round(total * 0.1, 2) if self.rng.random() < 0.2 else 0.0
        return self._msg(c, "track", channel, now, event="Order Completed", properties={
            "order_id": f"o{uuid.UUID(int=self.rng.getrandbits(128)).hex[:12]}",
            "total": total, "revenue": round(total - discount, 2), "discount": discount,
            "currency": "USD", "products": lines})

    def introduce(self, now: datetime) -> list[dict[str, Any]]:
        """The showcase customer logs in on the web (identify by userId) and orders."""
        c = self.showcase
        c.known = True
        product = self._product(c)
        return [self._msg(c, "identify", "web", now, traits={
                    "email": c.email, "region": c.region, "name": f"Customer {c.index}",
                    "consent": {"marketing_email": True, "marketing_sms": True,
                                "personalization": True}}),
                self._order(c, "web", now, [product])]

    def batch(self, size: int, now: datetime | None = None) -> list[dict[str, Any]]:
        """The next ``size`` touchpoints; the first batch starts with :meth:`introduce`."""
        now = now or datetime.now(UTC)
        out: list[dict[str, Any]] = []
        if not self._introduced and size > 0:
            self._introduced = True
            out.extend(self.introduce(now))
        while len(out) < size:
            out.extend(self.journey(now))
        return out[:size]


async def _post(http: httpx.AsyncClient, messages: list[dict[str, Any]]) -> None:
    """One batch, retried while ingest answers 503 (as the SDKs do)."""
    while True:
        resp = await http.post("/v1/batch", json={"batch": messages,
                                                  "sentAt": datetime.now(UTC).isoformat()})
        if resp.status_code != 503:
            resp.raise_for_status()
            return
        await asyncio.sleep(float(resp.headers.get("Retry-After", "1")))


async def send(ingest_url: str, write_key: str, *, customers: int = 3000, rate: float = 200.0,
               total: int | None = None, batch_size: int = 50, seed: int = 7,
               progress: bool = True,
               started: Callable[[str], Awaitable[object]] | None = None) -> int:
    """Post touchpoints to ingest at about ``rate`` events/s until ``total`` (or forever).

    ``started`` is awaited with the showcase customer's id once ingest accepted the first
    batch, which identifies that customer, before the progress bar starts.
    """
    population = Population(customers, seed)
    sent = 0
    columns = [TextColumn("[bold]simulate[/]"), BarColumn(),
               TextColumn("{task.completed:,} events"),
               TextColumn("{task.fields[rate]:,.0f}/s"), TextColumn("{task.fields[info]}"),
               TimeElapsedColumn()]
    async with httpx.AsyncClient(base_url=ingest_url, auth=(write_key, ""), timeout=30) as http:
        if started is not None and total != 0:
            first = population.batch(batch_size if total is None else min(batch_size, total))
            await _post(http, first)
            sent = len(first)
            await started(population.showcase.user_id)
        began, paced = time.monotonic(), sent  # pace what follows from here
        with Progress(*columns, disable=not progress) as bar:
            task = bar.add_task("events", total=total, completed=sent, rate=0.0, info="")
            plain = progress and not bar.console.is_terminal
            next_note = began + 10
            while total is None or sent < total:
                n = batch_size if total is None else min(batch_size, total - sent)
                messages = population.batch(n)
                await _post(http, messages)
                sent += len(messages)
                elapsed = time.monotonic() - began
                bar.update(task, completed=sent, rate=(sent - paced) / max(elapsed, 1e-9),
                           info=f"{population.orders:,} orders")
                if plain and time.monotonic() >= next_note:  # no live bar in logs and pipes
                    next_note += 10
                    print(f"simulate: {sent:,} events, {(sent - paced) / elapsed:,.0f}/s, "
                          f"{population.orders:,} orders", flush=True)
                ahead = (sent - paced) / rate - elapsed
                if ahead > 0:
                    await asyncio.sleep(ahead)
    return sent


async def profile_visible(profile_url: str, api_key: str, customer_id: str,
                          timeout: float = 60) -> bool:
    """Whether the profile API finds ``customer_id`` within ``timeout`` seconds: what was
    sent takes a moment to go through Kafka and the profile's two stream stages."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    async with httpx.AsyncClient(base_url=profile_url, timeout=5,
                                 headers={"Authorization": f"Bearer {api_key}"}) as http:
        while True:
            try:
                if (await http.get(f"/v1/customers/{customer_id}")).status_code == 200:
                    return True
            except httpx.HTTPError:
                pass
            if loop.time() >= deadline:
                return False
            await asyncio.sleep(0.25)
