"""Off-policy evaluation judged where the truth is known: the service's estimates
(``POST /v1/evaluations``) of what other policies would have earned on the decisions
the world made, against their true expected profit from the hidden probabilities, on
the very same decisions and candidates (read back from each decision's trace)."""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import httpx
from rich.table import Table

from rapport.shared.events import Channel, DecisionLogged, LoggedCandidate

from ..policies import Policy
from ..targets import policy_probabilities
from . import world

CHALLENGER = Policy(policy_id="greedy", share=0.0, optimism=0.0, epsilon=0.0,
                    description="a challenger that never explores (share 0: never "
                                "served, evaluated off-policy)")


@dataclass(frozen=True)
class Judged:
    target: str
    truth: float
    estimates: dict[str, Any]
    decisions: int

    @property
    def dr_error(self) -> float:
        return abs(self.estimates["dr"]["value"] - self.truth) / abs(self.truth) \
            if self.truth else float("nan")

    @property
    def dr_covers(self) -> bool:
        lo, hi = self.estimates["dr"]["ci95"]
        return lo <= self.truth <= hi


Seen = list[dict[str, Any]] | None
"""A decision's ranked candidates as its trace shows them (None: not a treatment)."""


async def _candidates(http: httpx.AsyncClient, url: str, ids: Sequence[str | None],
                      agent_key: str) -> list[tuple[Seen, int]]:
    sem = asyncio.Semaphore(16)

    async def one(decision_id: str | None) -> tuple[Seen, int]:
        if decision_id is None:
            return None, 0
        async with sem:
            resp = await http.get(f"{url}/v1/decisions/{decision_id}",
                                  headers={"Authorization": f"Bearer {agent_key}"})
        body = resp.json()
        if resp.status_code != 200 or body.get("group") != "treatment":
            return None, 0
        return ([t for t in body["trace"] if t.get("rank")
                 and t.get("verdict") != "not_considered"], len(body["actions"]))
    return await asyncio.gather(*(one(i) for i in ids))


def _replayed(policy: Policy, seen: list[dict[str, Any]], limit: int) -> dict[str, float]:
    logged = DecisionLogged(
        decision_id="-", decided_at="2026-01-01T00:00:00Z", customer="-", policy_id="-",
        group="treatment", channel=Channel.WEB, limit=limit, personalised=False,
        candidates=tuple(LoggedCandidate(
            offer_id=t["offer_id"], value=t["value"], cost=t["cost"],
            propensity=t["propensity"], spread=t.get("spread") or 0.0,
            priority=t.get("priority", 1.0), probability=t["probability"], made=t["made"],
            allowed=t["allowed"]) for t in seen))
    return dict(zip([c.offer_id for c in logged.candidates],
                    policy_probabilities(policy, logged), strict=True))


def _truth(plan: Sequence[tuple[world.Customer, str, float]],
           seen: Sequence[tuple[Seen, int]], target: str | Policy | None, limit: int,
           ) -> float:
    """Mean true expected profit per decision of a target: a fixed offer, uniform
    random (None), or a policy replayed on the decision's candidates."""
    total, n = 0.0, 0
    for (customer, channel, _), (cands, _) in zip(plan, seen, strict=True):
        if cands is None:
            continue
        n += 1
        allowed = [t["offer_id"] for t in cands if t["allowed"]]
        if isinstance(target, Policy):
            total += sum(p * world.expected_profit(customer, o, channel)
                         for o, p in _replayed(target, cands, limit).items())
        elif target is None:
            if allowed:
                total += sum(world.expected_profit(customer, o, channel)
                             for o in allowed) / len(allowed)
        elif target in allowed:
            total += world.expected_profit(customer, target, channel)
    return total / n if n else 0.0


async def judge(http: httpx.AsyncClient, url: str, plan: Sequence[tuple[world.Customer,
                                                                        str, float]],
                ids: Sequence[str | None], since: str, *, agent_key: str, ops_key: str,
                offers: Sequence[str], limit: int = 1,
                logging: Policy | None = None) -> list[Judged]:
    seen = await _candidates(http, url, ids, agent_key)
    targets: list[tuple[str, dict[str, Any], str | Policy | None]] = [
        (f"fixed {o}", {"fixed_offer": o}, o) for o in offers]
    targets.append(("uniform random", {"random": True}, None))
    targets.append((f"policy {CHALLENGER.policy_id} (challenger)",
                    {"policy_id": CHALLENGER.policy_id}, CHALLENGER))
    if logging is not None:
        targets.append((f"policy {logging.policy_id} (the one logging)",
                        {"policy_id": logging.policy_id}, logging))
    out = []
    for name, body, target in targets:
        resp = await http.post(f"{url}/v1/evaluations", json={"policy": body, "since": since},
                               timeout=120, headers={"Authorization": f"Bearer {ops_key}"})
        if resp.status_code != 200:
            continue
        got = resp.json()
        out.append(Judged(name, _truth(plan, seen, target, limit), got["estimates"],
                          got["decisions"]))
    return out


def table(judged: Sequence[Judged]) -> Table:
    t = Table(title="Off-policy evaluation against the truth (profit per decision)")
    for col in ("target", "truth", "IPS", "SNIPS", "DR", "DR 95% interval", "DR error",
                "covers"):
        t.add_column(col, justify="left" if col == "target" else "right")
    for j in judged:
        e = j.estimates
        lo, hi = e["dr"]["ci95"]
        t.add_row(j.target, f"{j.truth:.3f}", f"{e['ips']['value']:.3f}",
                  f"{e['snips']['value']:.3f}", f"{e['dr']['value']:.3f}",
                  f"[{lo:.3f}, {hi:.3f}]", f"{j.dr_error:.1%}", "yes" if j.dr_covers else "NO")
    return t
