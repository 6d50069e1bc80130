"""The offers report: what was made, expected and accepted, by offer, segment, value
tier and policy, hour by hour. Pure: the counters a logged decision or a final outcome
adds, and the report summed from the hourly counters.

Counters are kept per hour of the decision (so an acceptance counts in its decision's
hour, and actual is compared with expected on the same decisions):
``<offer>|<segment>|<tier>|made|expected|accepted|profit`` and
``policy|<policy>|decisions|made|accepted|profit|profit_sq`` (the squares give the
interval on profit per decision).
"""

from __future__ import annotations

import math
from collections import defaultdict
from collections.abc import Iterable, Mapping
from typing import Any

from rapport.shared.events import DecisionLogged

from .domain import Decision

UNKNOWN = "unknown"


def hour_of(epoch_s: float) -> int:
    return int(epoch_s // 3600)


def _cell(offer_id: str, segment: str | None, tier: str | None) -> str:
    return f"{offer_id}|{segment or UNKNOWN}|{tier or UNKNOWN}"


def logged_counts(d: DecisionLogged) -> dict[str, float]:
    """What a logged decision adds: each made offer, its expected acceptance and cost."""
    out: dict[str, float] = defaultdict(float)
    profit = 0.0
    for c in d.candidates:
        if c.made:
            cell = _cell(c.offer_id, d.segment, d.tier)
            out[f"{cell}|made"] += 1
            out[f"{cell}|expected"] += c.propensity
            out[f"{cell}|profit"] -= c.cost
            profit -= c.cost
            out[f"policy|{d.policy_id}|made"] += 1
    out[f"policy|{d.policy_id}|decisions"] += 1
    out[f"policy|{d.policy_id}|profit"] += profit
    out[f"policy|{d.policy_id}|profit_sq"] += profit * profit
    return dict(out)


def decision_profit(d: Decision, accepted: Iterable[str]) -> float:
    """Profit so far: the values of the accepted actions less every made action's cost."""
    taken = set(accepted)
    return sum((a.value if a.action_id in taken else 0.0) - a.cost for a in d.actions)


def accepted_counts(d: Decision, action_id: str, accepted_before: Iterable[str]
                    ) -> dict[str, float]:
    """What an acceptance adds (its value, and the change in the squared profit)."""
    action = next(a for a in d.actions if a.action_id == action_id)
    rfm = (d.scores or {}).get("rfm") or {}
    cell = _cell(action.offer_id, rfm.get("label"), (d.scores or {}).get("value_tier"))
    before = decision_profit(d, accepted_before)
    after = before + action.value
    return {f"{cell}|accepted": 1.0, f"{cell}|profit": action.value,
            f"policy|{d.policy_id}|accepted": 1.0,
            f"policy|{d.policy_id}|profit": action.value,
            f"policy|{d.policy_id}|profit_sq": after * after - before * before}


def _add(into: dict[str, float], counts: Mapping[str, float], *names: str) -> None:
    for n in names:
        into[n] = into.get(n, 0.0) + counts.get(n, 0.0)


def summarise(hours: Mapping[int, Mapping[str, float]]) -> dict[str, Any]:
    """The report over the hours given: per offer (with by segment, by tier and by
    hour), and per policy with profit per decision and its 95% interval."""
    offers: dict[str, dict[str, Any]] = {}
    policies: dict[str, dict[str, float]] = defaultdict(dict)
    for hour, counters in sorted(hours.items()):
        for name, amount in counters.items():
            parts = name.split("|")
            if parts[0] == "policy" and len(parts) == 3:
                _add(policies[parts[1]], {parts[2]: amount}, parts[2])
                continue
            if len(parts) != 4:
                continue
            offer_id, segment, tier, counter = parts
            o = offers.setdefault(offer_id, {"total": {}, "segment": defaultdict(dict),
                                             "tier": defaultdict(dict),
                                             "hours": defaultdict(dict)})
            for bucket in (o["total"], o["segment"][segment], o["tier"][tier],
                           o["hours"][hour]):
                _add(bucket, {counter: amount}, counter)
    return {"offers": [_offer(oid, o) for oid, o in sorted(offers.items())],
            "policies": [_policy(pid, p) for pid, p in sorted(policies.items())]}


def _row(c: Mapping[str, float]) -> dict[str, Any]:
    made, accepted = c.get("made", 0.0), c.get("accepted", 0.0)
    return {"decisions": int(made), "expected_acceptances": round(c.get("expected", 0.0), 4),
            "acceptances": int(accepted), "profit": round(c.get("profit", 0.0), 4),
            "acceptance_rate": round(accepted / made, 6) if made else None}


def _offer(offer_id: str, o: dict[str, Any]) -> dict[str, Any]:
    return {"offer_id": offer_id, **_row(o["total"]),
            "by_segment": {k: _row(v) for k, v in sorted(o["segment"].items())},
            "by_tier": {k: _row(v) for k, v in sorted(o["tier"].items())},
            "over_time": [{"hour_start": h * 3600, **_row(v)}
                          for h, v in sorted(o["hours"].items())]}


def _policy(policy_id: str, p: Mapping[str, float]) -> dict[str, Any]:
    n, made = p.get("decisions", 0.0), p.get("made", 0.0)
    total, squares = p.get("profit", 0.0), p.get("profit_sq", 0.0)
    mean = total / n if n else 0.0
    var = max(0.0, squares / n - mean * mean) * n / (n - 1) if n > 1 else 0.0
    half = 1.96 * math.sqrt(var / n) if n > 1 else math.inf
    return {"policy_id": policy_id, "group": "control" if policy_id == "control" else
            "treatment", "decisions": int(n), "actions": int(made),
            "acceptances": int(p.get("accepted", 0.0)),
            "acceptance_rate": round(p.get("accepted", 0.0) / made, 6) if made else None,
            "profit_per_decision": round(mean, 6),
            "ci95": [round(mean - half, 6), round(mean + half, 6)] if n > 1 else None}
