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

from . import world


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


async def _candidates(http: httpx.AsyncClient, url: str, ids: Sequence[str | None],
                      agent_key: str) -> list[list[str] | None]:
    sem = asyncio.Semaphore(16)

    async def one(decision_id: str | None) -> list[str] | None:
        if decision_id is None:
            return None
        async with sem:
            resp = await http.get(f"{url}/v1/decisions/{decision_id}",
                                  headers={"Authorization": f"Bearer {agent_key}"})
        body = resp.json()
        if resp.status_code != 200 or body.get("group") != "treatment":
            return None
        return [t["offer_id"] for t in body["trace"] if t.get("rank") and t.get("allowed")]
    return await asyncio.gather(*(one(i) for i in ids))


def _truth(plan: Sequence[tuple[world.Customer, str, float]],
           candidates: Sequence[list[str] | None], offer_id: str | None) -> float:
    """Mean true expected profit per decision of a fixed offer (or, None, uniform)."""
    total, n = 0.0, 0
    for (customer, channel, _), cands in zip(plan, candidates, strict=True):
        if cands is None:
            continue
        n += 1
        if offer_id is None:
            if cands:
                total += sum(world.expected_profit(customer, o, channel) for o in cands) / \
                    len(cands)
        elif offer_id in cands:
            total += world.expected_profit(customer, offer_id, channel)
    return total / n if n else 0.0


async def judge(http: httpx.AsyncClient, url: str, plan: Sequence[tuple[world.Customer,
                                                                        str, float]],
                ids: Sequence[str | None], since: str, *, agent_key: str, ops_key: str,
                offers: Sequence[str]) -> list[Judged]:
    candidates = await _candidates(http, url, ids, agent_key)
    out = []
    for target, offer in [*((f"fixed {o}", o) for o in offers), ("uniform random", None)]:
        body = {"policy": {"fixed_offer": offer} if offer else {"random": True},
                "since": since}
        resp = await http.post(f"{url}/v1/evaluations", json=body, timeout=120,
                               headers={"Authorization": f"Bearer {ops_key}"})
        if resp.status_code != 200:
            continue
        got = resp.json()
        out.append(Judged(target, _truth(plan, candidates, offer), got["estimates"],
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
