"""Drive the real services through their HTTP APIs in the simulated world and
measure what the decision service earns, against the best static policy and the
oracle on the very same decisions."""

from __future__ import annotations

import asyncio
import math
import random
import time
from collections import Counter
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import httpx
from rich.table import Table

from ..policies import Policy
from . import judging, world

WRITE_KEY = "dev-write-key"
CHANNEL_KEY = "dev-channel"
AGENT_KEY = "dev-agent"
ADMIN_KEY = "dev-admin"
OPS_KEY = "dev-ops"


class WorldError(RuntimeError):
    """The services did not take what the world sent (or not in time)."""


@dataclass
class Report:
    customers: int
    decisions: int
    limit: int
    learned: float  # realised profit per decision
    learned_second_half: float
    learned_expected: float  # the same choices, valued at the hidden probabilities
    static: float  # expected profit per decision of the best static policy
    static_second_half: float
    oracle: float
    oracle_second_half: float
    acceptance_rate: float  # of the actions shown
    decision_status: Counter[int] = field(default_factory=Counter)
    outcome_status: Counter[int] = field(default_factory=Counter)
    shown: Counter[str] = field(default_factory=Counter)
    empty_decisions: int = 0
    bad_actions: list[str] = field(default_factory=list)  # over limit or not in the catalog
    seconds: float = 0.0  # the decisions' wall time
    judged: list[judging.Judged] = field(default_factory=list)
    sample: dict[str, Any] | None = None  # one late decision with its trace, as served

    @staticmethod
    def _ratio(a: float, b: float) -> float:
        return a / b if b else math.nan

    @property
    def learned_over_static(self) -> float:
        return self._ratio(self.learned, self.static)

    @property
    def learned_over_oracle(self) -> float:
        return self._ratio(self.learned, self.oracle)

    @property
    def second_half_over_static(self) -> float:
        return self._ratio(self.learned_second_half, self.static_second_half)

    @property
    def second_half_over_oracle(self) -> float:
        return self._ratio(self.learned_second_half, self.oracle_second_half)

    def table(self) -> Table:
        t = Table(title=f"Next-best-action in the simulated world: {self.customers:,} "
                        f"customers, {self.decisions:,} decisions (limit {self.limit})")
        t.add_column("profit per decision")
        t.add_column("all", justify="right")
        t.add_column("second half", justify="right")
        t.add_row("learned (service), realised", f"{self.learned:.3f}",
                  f"{self.learned_second_half:.3f}")
        t.add_row("learned (service), expected", f"{self.learned_expected:.3f}", "")
        t.add_row("best static offer per channel", f"{self.static:.3f}",
                  f"{self.static_second_half:.3f}")
        t.add_row("oracle", f"{self.oracle:.3f}", f"{self.oracle_second_half:.3f}")
        t.add_row("learned / static", f"{self.learned_over_static:.2f}",
                  f"{self.second_half_over_static:.2f}")
        t.add_row("learned / oracle", f"{self.learned_over_oracle:.2f}",
                  f"{self.second_half_over_oracle:.2f}")
        t.add_row("acceptance rate of shown", f"{self.acceptance_rate:.3f}", "")
        t.add_row("decisions without an action", f"{self.empty_decisions:,}", "")
        t.add_row("decisions per second", f"{self.decisions / self.seconds:,.0f}"
                  if self.seconds else "", "")
        t.add_row("shown", ", ".join(f"{k} {v}" for k, v in self.shown.most_common()), "")
        return t


async def send_histories(http: httpx.AsyncClient, url: str,
                         histories: Mapping[str, list[dict[str, Any]]]) -> dict[str, int]:
    """Every customer's history (customer id -> Segment messages) through
    ``POST /v1/batch``; returns the orders sent per customer."""
    orders: dict[str, int] = {}
    batch: list[dict] = []
    batches: list[list[dict]] = []
    for customer_id, msgs in histories.items():
        orders[customer_id] = world.orders_in(msgs)
        if len(batch) + len(msgs) > 400:
            batches.append(batch)
            batch = []
        batch.extend(msgs)
    if batch:
        batches.append(batch)
    sem = asyncio.Semaphore(4)

    async def send(messages: list[dict]) -> None:
        async with sem:
            for attempt in range(5):
                resp = await http.post(f"{url}/v1/batch", json={"batch": messages},
                                       auth=(WRITE_KEY, ""))
                if resp.status_code == 503 and attempt < 4:
                    await asyncio.sleep(1)
                    continue
                body = resp.json()
                if resp.status_code != 200 or body.get("rejected"):
                    raise WorldError(f"ingest refused a batch ({resp.status_code}): "
                                     f"{resp.text[:500]}")
                return

    await asyncio.gather(*(send(b) for b in batches))
    return orders


async def wait_profiles(http: httpx.AsyncClient, url: str, orders: Mapping[str, int],
                         timeout: float) -> None:
    """Until the profile API knows every customer with every order sent."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    pending = dict(orders)
    sem = asyncio.Semaphore(16)

    async def ready(customer_id: str, expected: int) -> bool:
        async with sem:
            try:
                resp = await http.get(f"{url}/v1/customers/{customer_id}",
                                      headers={"Authorization": f"Bearer {AGENT_KEY}"})
            except httpx.HTTPError:
                return False
        return (resp.status_code == 200
                and int(resp.json().get("metrics", {}).get("orders", 0)) >= expected)

    while pending:
        ids = list(pending)
        done = await asyncio.gather(*(ready(i, pending[i]) for i in ids))
        for customer_id, ok in zip(ids, done, strict=True):
            if ok:
                del pending[customer_id]
        if not pending:
            return
        if loop.time() >= deadline:
            raise WorldError(f"{len(pending):,} customers not (fully) on the profile API "
                             f"after {timeout:.0f} s, e.g. {next(iter(pending))}")
        await asyncio.sleep(0.5)


async def run_world(urls: Mapping[str, str], n_customers: int, decisions: int, seed: int,
                    limit: int = 1, concurrency: int = 8, profile_timeout: float = 120,
                    evaluate: bool = True, epsilon: float = 0.05,
                    progress: Callable[[int], object] | None = None,
                    say: Callable[[str], object] | None = None) -> Report:
    """``urls``: the base URL of each service by name (``ingest``, ``profile``,
    ``next-action``); ``progress`` is told how many decisions are done as they finish,
    ``say`` what phase the run is in."""
    people = world.customers(n_customers, seed)
    now = datetime.now(UTC)
    tell = say or (lambda _: None)
    async with httpx.AsyncClient(timeout=30) as http:
        tell(f"Sending the history of {n_customers:,} customers to ingest ...")
        orders = await send_histories(http, urls["ingest"], {
            c.customer_id: world.touchpoints(c, now) for c in people})
        tell("Waiting for the profile API to have every customer and order ...")
        await wait_profiles(http, urls["profile"], orders, profile_timeout)
        tell(f"Loading the catalog ({len(world.OFFERS)} offers); {decisions:,} decisions ...")
        resp = await http.put(f"{urls['next-action']}/v1/offers", json=world.OFFERS,
                              headers={"Authorization": f"Bearer {ADMIN_KEY}"})
        if resp.status_code != 200:
            raise WorldError(f"catalog refused ({resp.status_code}): {resp.text[:500]}")
        served = Policy(policy_id="default", share=1.0, epsilon=epsilon)
        resp = await http.put(f"{urls['next-action']}/v1/policies", json={"policies": [
            served.model_dump(), judging.CHALLENGER.model_dump()]},
            headers={"Authorization": f"Bearer {ADMIN_KEY}"})
        if resp.status_code != 200:
            raise WorldError(f"policies refused ({resp.status_code}): {resp.text[:500]}")

        # The same decisions whatever the service answers: who, where, and the draw.
        rng = random.Random(f"decisions:{seed}")
        plan = [(rng.choice(people), rng.choice(world.CHANNELS), rng.random())
                for _ in range(decisions)]
        realised = [0.0] * decisions
        ids: list[str | None] = [None] * decisions
        since = datetime.now(UTC).isoformat()
        expected = [0.0] * decisions
        report = Report(customers=n_customers, decisions=decisions, limit=limit,
                        learned=0, learned_second_half=0, learned_expected=0, static=0,
                        static_second_half=0, oracle=0, oracle_second_half=0,
                        acceptance_rate=0)
        catalog = set(world.OFFER_BY_ID)
        channel_auth = {"Authorization": f"Bearer {CHANNEL_KEY}"}
        sem = asyncio.Semaphore(concurrency)
        done = 0
        accepted = 0

        async def decide(i: int) -> None:
            nonlocal done, accepted
            customer, channel, draw = plan[i]
            async with sem:
                resp = await http.post(f"{urls['next-action']}/v1/next-best-action",
                                       headers=channel_auth,
                                       json={"customer_id": customer.customer_id,
                                             "channel": channel, "limit": limit})
                report.decision_status[resp.status_code] += 1
                if resp.status_code == 200:
                    body = resp.json()
                    ids[i] = body.get("decision_id")
                    actions = body.get("actions", [])
                    if len(actions) > limit:
                        report.bad_actions.append(f"{len(actions)} actions > limit {limit}")
                    for a in actions:
                        if a.get("offer_id") not in catalog:
                            report.bad_actions.append(f"unknown offer {a.get('offer_id')}")
                    if not actions or actions[0].get("offer_id") not in catalog:
                        report.empty_decisions += not actions
                    else:
                        top = actions[0]
                        offer = world.OFFER_BY_ID[top["offer_id"]]
                        p = world.accept_probability(customer, offer["offer_id"], channel)
                        took = draw < p
                        accepted += took
                        report.shown[offer["offer_id"]] += 1
                        realised[i] = (offer["value"] if took else 0.0) - offer["cost"]
                        expected[i] = p * offer["value"] - offer["cost"]
                        out = await http.post(
                            f"{urls['next-action']}/v1/outcomes", headers=channel_auth,
                            json={"decision_id": body["decision_id"],
                                  "action_id": top["action_id"],
                                  "outcome": "accepted" if took else "rejected"})
                        report.outcome_status[out.status_code] += 1
            done += 1
            if progress is not None:
                progress(done)

        started = time.monotonic()
        await asyncio.gather(*(decide(i) for i in range(decisions)))
        report.seconds = time.monotonic() - started
        if evaluate:
            tell("Judging the service's off-policy estimates against the truth ...")
            await asyncio.sleep(2)  # the learner hears the last outcomes
            last = next((d for d in reversed(ids) if d), None)
            if last is not None:
                got = await http.get(f"{urls['next-action']}/v1/decisions/{last}",
                                     headers={"Authorization": f"Bearer {AGENT_KEY}"})
                report.sample = got.json() if got.status_code == 200 else None
            report.judged = await judging.judge(
                http, urls["next-action"], plan, ids, since, agent_key=AGENT_KEY,
                ops_key=OPS_KEY, offers=[o["offer_id"] for o in world.OFFERS[:4]],
                limit=limit, logging=served)

    def mean(values: list[float]) -> float:
        return sum(values) / len(values) if values else 0.0

    half = decisions // 2
    static = [world.expected_profit(c, world.best_static_offer(ch), ch) for c, ch, _ in plan]
    oracle = [world.expected_profit(c, world.oracle_offer(c, ch), ch) for c, ch, _ in plan]
    report.learned, report.learned_second_half = mean(realised), mean(realised[half:])
    report.learned_expected = mean(expected)
    report.static, report.static_second_half = mean(static), mean(static[half:])
    report.oracle, report.oracle_second_half = mean(oracle), mean(oracle[half:])
    shown = sum(report.shown.values())
    report.acceptance_rate = accepted / shown if shown else 0.0
    return report
