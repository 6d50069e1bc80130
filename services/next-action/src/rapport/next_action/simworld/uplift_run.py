"""The uplift world (:mod:`.uplift_world`) driven through the running services, by
their HTTP APIs and ingest only: histories in, decisions asked for, the customers'
orders sent back through ingest as they would happen, and the service left to attribute
them, close its windows and learn. Every decision is then valued at its true
incremental expected profit, and so are "always discount", "never discount" and an
oracle that knows each customer's true uplift, on the very same customers and rounds.
"""

from __future__ import annotations

import asyncio
import random
import time
import uuid
from collections import Counter
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import httpx
from rich.table import Table

from ..uplift_quality import qini_against_truth
from . import uplift_world as world
from .run import (
    ADMIN_KEY,
    AGENT_KEY,
    CHANNEL_KEY,
    OPS_KEY,
    WRITE_KEY,
    WorldError,
    send_histories,
    wait_profiles,
)

CHANNEL = "web"
"""Where decisions are asked for (web has no contact rule by default; email allows two
marketing messages a week, which rounds seconds apart would use up)."""
KIND = {"discount": "offer", "retention": "retention", "message": "offer"}
BELIEF = {"discount20": 8.0, "retention10": 8.0, "recognition": 5.0}
"""The catalog's ``value`` (net margin if accepted): the business's belief before any
measurement, deliberately the naive one (a discount looks worth making to anyone)."""


def catalog() -> list[dict[str, Any]]:
    return [{"offer_id": o["offer_id"], "name": o["name"], "channels": o["channels"],
             "value": BELIEF[o["offer_id"]], "cost": o["cost"], "kind": KIND[o["kind"]]}
            for o in world.OFFERS]


@dataclass
class UpliftRun:
    customers: int
    rounds: int
    made: list[list[str | None]] = field(default_factory=list)
    """Per round, per customer: the offer the service made (None: nothing)."""
    learned: list[float] = field(default_factory=list)
    """Per round: the service's true incremental profit per decision."""
    realised: list[float] = field(default_factory=list)
    """Per round: realised margin - offer cost per decision (noisy; for reference)."""
    always: float = 0.0
    oracle: float = 0.0
    shown: Counter[str] = field(default_factory=Counter)
    qini: dict[str, float] = field(default_factory=dict)
    report: dict[str, Any] = field(default_factory=dict)
    seconds: float = 0.0
    facts: dict[str, float] = field(default_factory=dict)
    """The service's attribution results (attributed, late, ...) from its /metrics."""

    def second_half(self, values: list[float]) -> float:
        tail = values[len(values) // 2:]
        return sum(tail) / len(tail) if tail else 0.0

    @property
    def learned_second_half(self) -> float:
        return self.second_half(self.learned)

    def table(self) -> Table:
        t = Table(title=f"Uplift world through the services: {self.customers:,} customers x "
                        f"{self.rounds} rounds (true incremental profit per decision)")
        for col in ("policy", "all rounds", "second half", "/ oracle"):
            t.add_column(col, justify="right" if col != "policy" else "left")
        mean = sum(self.learned) / len(self.learned) if self.learned else 0.0
        for name, a, b in (("service (learned)", mean, self.learned_second_half),
                           ("always discount20", self.always, self.always),
                           ("never discount", 0.0, 0.0),
                           ("oracle (true uplift)", self.oracle, self.oracle)):
            t.add_row(name, f"{a:.3f}", f"{b:.3f}",
                      f"{b / self.oracle:.2f}" if self.oracle else "")
        realised = sum(self.realised) / max(len(self.realised), 1)
        t.add_row("realised by the service", f"{realised:.3f}",
                  f"{self.second_half(self.realised):.3f}", "")
        t.add_row("made, last round", ", ".join(
            f"{k} {v}" for k, v in Counter(m or "nothing" for m in self.made[-1]).most_common())
            if self.made else "", "", "")
        t.add_row("orders as attributed", ", ".join(
            f"{k} {v:,.0f}" for k, v in sorted(self.facts.items())), "", "")
        t.add_row("Qini vs true uplift, last round",
                  ", ".join(f"{k} {v:.2f}" for k, v in sorted(self.qini.items())), "", "")
        return t


def _order(c: world.Customer, at: datetime, basket: float, discount: float,
           params: world.Params) -> dict[str, Any]:
    return {"type": "track", "userId": c.customer_id, "event": "Order Completed",
            "messageId": uuid.uuid4().hex, "timestamp": at.isoformat(),
            "context": {"channel": "web"},
            "properties": {"order_id": uuid.uuid4().hex[:16], "total": basket,
                           "discount": discount, "revenue": round(basket - discount, 2),
                           "currency": "USD",
                           "products": [{"product_id": "p-0001", "category": "shop",
                                         "price": basket, "quantity": 1,
                                         "cost": round(params.cogs * basket, 2)}]}}


async def _closed(http: httpx.AsyncClient, url: str, expected: int, timeout: float) -> dict:
    """The uplift report once the service has closed ``expected`` windows."""
    deadline = time.monotonic() + timeout
    while True:
        resp = await http.get(f"{url}/v1/reports/uplift",
                              headers={"Authorization": f"Bearer {OPS_KEY}"})
        body = resp.json() if resp.status_code == 200 else {}
        overall = body.get("overall") or {}
        n = sum((overall.get(arm) or {}).get("decisions", 0) for arm in ("treatment", "control"))
        if n >= expected:
            return body
        if time.monotonic() > deadline:
            raise WorldError(f"only {n:,} of {expected:,} attribution windows closed after "
                             f"{timeout:.0f} s")
        await asyncio.sleep(0.5)


@dataclass
class _Round:
    """What one round sends and sees (one decision per customer)."""

    http: httpx.AsyncClient
    urls: Mapping[str, str]
    params: world.Params
    sem: asyncio.Semaphore
    made: list[str | None]
    ids: list[str | None]
    realised: list[float]

    async def decide(self, i: int, c: world.Customer, draw: random.Random) -> None:
        """Ask for the customer's next-best action, let them respond as their kind does,
        and send what they buy through ingest, like any channel."""
        async with self.sem:
            resp = await self.http.post(
                f"{self.urls['next-action']}/v1/next-best-action",
                headers={"Authorization": f"Bearer {CHANNEL_KEY}"},
                json={"customer_id": c.customer_id, "channel": CHANNEL, "limit": 1})
            if resp.status_code != 200:
                raise WorldError(f"decision refused ({resp.status_code}): {resp.text[:300]}")
            body = resp.json()
            self.ids[i] = body["decision_id"]
            actions = body.get("actions") or []
            offer = self.made[i] = actions[0]["offer_id"] if actions else None
            bought, basket, discount = world.respond(c, offer, draw, self.params)
            cost = float(world.OFFER_BY_ID[offer]["cost"]) if offer else 0.0
            self.realised[i] = (world.margin(basket, discount, self.params) if bought
                                else 0.0) - cost
            if bought:
                sale = _order(c, datetime.now(UTC), basket, discount, self.params)
                resp = await self.http.post(f"{self.urls['ingest']}/v1/batch",
                                            json={"batch": [sale]}, auth=(WRITE_KEY, ""))
                if resp.status_code != 200 or resp.json().get("rejected"):
                    raise WorldError(f"ingest refused an order: {resp.text[:300]}")


async def _setup(http: httpx.AsyncClient, urls: Mapping[str, str],
                 people: list[world.Customer], control_share: float,
                 holdout_share: float, optimism: float | None) -> int:
    """Histories in, the catalog and the policy put; how many windows closed before."""
    now = datetime.now(UTC)
    orders = await send_histories(http, urls["ingest"], {
        c.customer_id: world.touchpoints(c, now) for c in people})
    await wait_profiles(http, urls["profile"], orders, 180)
    na = urls["next-action"]
    for path, body in (("/v1/offers", catalog()), ("/v1/policies", {
            "control_share": control_share, "policies": [{
                "policy_id": "uplift", "share": 1 - control_share,
                "holdout_share": holdout_share,
                **({} if optimism is None else {"uplift_optimism": optimism})}]})):
        resp = await http.put(f"{na}{path}", json=body,
                              headers={"Authorization": f"Bearer {ADMIN_KEY}"})
        if resp.status_code != 200:
            raise WorldError(f"{path} refused ({resp.status_code}): {resp.text[:300]}")
    overall = (await _closed(http, na, 0, 5))["overall"]
    return sum((overall.get(a) or {}).get("decisions", 0) for a in ("treatment", "control"))


async def run_uplift_world(urls: Mapping[str, str], n_customers: int = 600, rounds: int = 8,
                           seed: int = 3, window_s: float = 8.0, concurrency: int = 8,
                           holdout_share: float = 0.05, control_share: float = 0.02,
                           params: world.Params | None = None, optimism: float | None = None,
                           say: Callable[[str], object] | None = None) -> UpliftRun:
    """``urls``: each service's base URL by name (``ingest``, ``profile``,
    ``next-action``); the next-action service must run with an attribution window of
    ``window_s`` (``RAPPORT_ATTRIBUTION_WINDOW_S``)."""
    tell = say or (lambda _: None)
    params = params or world.Params()
    people = world.customers(n_customers, seed, params)
    out = UpliftRun(customers=n_customers, rounds=rounds)
    async with httpx.AsyncClient(timeout=30) as http:
        tell(f"Sending the history of {n_customers:,} customers to ingest ...")
        before = await _setup(http, urls, people, control_share, holdout_share,
                              optimism)
        rng = random.Random(f"uplift-run:{seed}")
        sem = asyncio.Semaphore(concurrency)
        started = time.monotonic()
        ids: list[str | None] = [None] * n_customers
        for r in range(rounds):
            tell(f"Round {r + 1} of {rounds}: {n_customers:,} decisions ...")
            now = _Round(http, urls, params, sem, [None] * n_customers, ids,
                         [0.0] * n_customers)
            draws = [random.Random(rng.getrandbits(64)) for _ in people]
            await asyncio.gather(*(now.decide(i, c, draws[i]) for i, c in enumerate(people)))
            out.made.append(now.made)
            out.learned.append(sum(world.true_profit(c, m, params)
                                   for c, m in zip(people, now.made, strict=True))
                               / n_customers)
            out.realised.append(sum(now.realised) / n_customers)
            out.shown.update(m for m in now.made if m)
            tell(f"  true incremental profit per decision {out.learned[-1]:.3f}; waiting for "
                 f"the service to close {n_customers:,} windows ...")
            out.report = await _closed(http, urls["next-action"],
                                       before + (r + 1) * n_customers, window_s * 4 + 60)
        out.seconds = time.monotonic() - started
        out.always = sum(world.true_profit(c, "discount20", params) for c in people) / n_customers
        out.oracle = sum(world.true_profit(c, world.oracle_offer(c, params), params)
                         for c in people) / n_customers
        out.qini = await _qini(http, urls["next-action"], people, ids, params)
        out.facts = await _attributed(http, urls["next-action"])
    return out


async def _attributed(http: httpx.AsyncClient, url: str) -> dict[str, float]:
    """How the service's attribution counted the orders it heard, by result."""
    out: dict[str, float] = {}
    text = (await http.get(f"{url}/metrics")).text
    for line in text.splitlines():
        if line.startswith("rapport_attribution_facts_total{") and 'kind="order"' in line:
            result = line.split('result="', 1)[1].split('"', 1)[0]
            out[result] = out.get(result, 0.0) + float(line.rsplit(" ", 1)[1])
    return out


async def _qini(http: httpx.AsyncClient, url: str, people: list[world.Customer],
                ids: list[str | None], params: world.Params) -> dict[str, float]:
    """Each offer's Qini against the true uplift, from the uplift the service's model
    gave each customer in their last decision's trace."""
    sem = asyncio.Semaphore(16)
    agent = {"Authorization": f"Bearer {AGENT_KEY}"}

    async def trace(d: str | None) -> list[dict[str, Any]]:
        if d is None:
            return []
        async with sem:
            resp = await http.get(f"{url}/v1/decisions/{d}", headers=agent)
        return resp.json().get("trace", []) if resp.status_code == 200 else []

    traces = await asyncio.gather(*(trace(d) for d in ids))
    out = {}
    for offer in world.OFFER_IDS:
        scores, truth = [], []
        for c, t in zip(people, traces, strict=True):
            entry = next((e for e in t if e.get("offer_id") == offer
                          and e.get("uplift") is not None), None)
            if entry is not None:
                scores.append(entry["uplift"])
                truth.append(world.true_uplift(c, params)[offer])
        if len(scores) > 10:
            out[offer] = float(qini_against_truth(scores, truth))
    return out


def report_table(report: Mapping[str, Any]) -> Table:
    """The service's own uplift report (``GET /v1/reports/uplift``), per offer."""
    t = Table(title="The service's uplift report: treated against held out, per offer")
    for col in ("offer", "treated", "held out", "response treated / held out",
                "incremental response (95%)", "incremental profit (95%)", "Qini"):
        t.add_column(col, justify="left" if col == "offer" else "right")

    def ci(v: Any, lo_hi: Any) -> str:
        return "" if v is None else f"{v:+.3f} [{lo_hi[0]:+.2f}, {lo_hi[1]:+.2f}]" \
            if lo_hi else f"{v:+.3f}"

    rows = [*report.get("offers", []), {"offer_id": "all (treatment vs control)",
                                        **report.get("overall", {})}]
    for o in rows:
        a = o.get("treated") or o.get("treatment") or {}
        b = o.get("held_out") or o.get("control") or {}
        rate = f"{a.get('response_rate') or 0:.3f} / {b.get('response_rate') or 0:.3f}"
        t.add_row(o["offer_id"], f"{a.get('decisions', 0):,}", f"{b.get('decisions', 0):,}",
                  rate, ci(o.get("incremental_response"), o.get("incremental_response_ci95")),
                  ci(o.get("incremental_profit"), o.get("incremental_profit_ci95")),
                  "" if not o.get("qini") or o["qini"].get("coefficient") is None
                  else f"{o['qini']['coefficient']:.2f}")
    return t
