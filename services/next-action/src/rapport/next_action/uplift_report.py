"""The uplift report (``GET /v1/reports/uplift``), pure: from the hourly counters of
closed attribution windows, per offer and per value tier and segment, the treated and
held-out decisions, their response rates, the incremental response and the
incremental profit per decision, each with a 95% interval; and each offer's Qini
curve from its model's predictions.

Counters (``<offer>|<cut>|<arm>|<counter>``, cut ``all``, ``tier:<t>`` or
``segment:<s>``): arms ``treated`` (the offer was made) and ``held_out`` (the offer's
random holdout withheld it) per offer, and ``treatment`` and ``control`` (the global
control group) for offer ``*``. Counters: n, buyers, margin, profit (margin less the
offer's cost), profit_sq.
"""

from __future__ import annotations

import math
from collections import defaultdict
from collections.abc import Mapping, Sequence
from typing import Any

from .attribution import ANY
from .uplift_quality import qini_coefficient, qini_curve

Z95 = 1.959963984540054
QINI_POINTS = 20


def _interval(mean: float, var: float) -> list[float] | None:
    if not math.isfinite(var):
        return None
    half = Z95 * math.sqrt(max(var, 0.0))
    return [round(mean - half, 6), round(mean + half, 6)]


def _arm(c: Mapping[str, float]) -> dict[str, Any]:
    n = c.get("n", 0.0)
    buyers, profit, sq = c.get("buyers", 0.0), c.get("profit", 0.0), c.get("profit_sq", 0.0)
    rate = buyers / n if n else None
    mean = profit / n if n else None
    var = max(0.0, sq / n - (profit / n) ** 2) * n / (n - 1) if n > 1 else math.inf
    return {"decisions": int(n), "buyers": int(buyers),
            "response_rate": None if rate is None else round(rate, 6),
            "margin": round(c.get("margin", 0.0), 4),
            "profit_per_decision": None if mean is None else round(mean, 6),
            "_var_rate": (rate * (1 - rate) / n) if n and rate is not None else math.inf,
            "_var_profit": var / n if n else math.inf}


def compare(treated: Mapping[str, float], untreated: Mapping[str, float],
            names: tuple[str, str] = ("treated", "held_out")) -> dict[str, Any]:
    """One comparison: both arms, and the differences with Wald / Welch intervals."""
    t, u = _arm(treated), _arm(untreated)
    out: dict[str, Any] = {}
    if t["decisions"] and u["decisions"]:
        dr = t["response_rate"] - u["response_rate"]
        dp = t["profit_per_decision"] - u["profit_per_decision"]
        out["incremental_response"] = round(dr, 6)
        out["incremental_response_ci95"] = _interval(dr, t["_var_rate"] + u["_var_rate"])
        out["incremental_profit"] = round(dp, 6)
        out["incremental_profit_ci95"] = _interval(dp, t["_var_profit"] + u["_var_profit"])
    else:
        out.update(incremental_response=None, incremental_response_ci95=None,
                   incremental_profit=None, incremental_profit_ci95=None)
    for name, arm in zip(names, (t, u), strict=True):
        out[name] = {k: v for k, v in arm.items() if not k.startswith("_")}
    return out


def _qini(rows: Sequence[Sequence[float]], since_h: int, until_h: int) -> dict[str, Any]:
    chosen = [r for r in rows if since_h <= r[0] <= until_h]
    if not chosen or not any(r[2] for r in chosen) or all(r[2] for r in chosen):
        return {"windows": len(chosen), "coefficient": None, "curve": []}
    scores = [r[1] for r in chosen]
    treated = [bool(r[2]) for r in chosen]
    outcome = [float(r[3]) for r in chosen]
    fraction, gains = qini_curve(scores, treated, outcome)
    step = max(1, len(fraction) // QINI_POINTS)
    picks = sorted({*range(0, len(fraction), step), len(fraction) - 1})
    return {"windows": len(chosen),
            "coefficient": round(float(qini_coefficient(scores, treated, outcome)), 6),
            "curve": [{"targeted": round(float(fraction[i]), 4),
                       "incremental_buyers": round(float(gains[i]), 4)} for i in picks]}


def summarise(hours: Mapping[int, Mapping[str, float]],
              rows: Mapping[str, Sequence[Sequence[float]]], since_h: int, until_h: int,
              ) -> dict[str, Any]:
    cells: dict[str, dict[str, dict[str, dict[str, float]]]] = defaultdict(
        lambda: defaultdict(lambda: defaultdict(dict)))
    for _hour, counters in sorted(hours.items()):
        for name, amount in counters.items():
            parts = name.split("|")
            if len(parts) != 4:
                continue
            offer, cut, arm, counter = parts
            bucket = cells[offer][cut][arm]
            bucket[counter] = bucket.get(counter, 0.0) + amount

    def by(offer: str, prefix: str, names: tuple[str, str]) -> dict[str, Any]:
        return {cut[len(prefix):]: compare(arms.get(names[0], {}), arms.get(names[1], {}),
                                           names)
                for cut, arms in sorted(cells[offer].items()) if cut.startswith(prefix)}

    offers = []
    for offer in sorted(o for o in cells if o != ANY):
        whole = cells[offer].get("all", {})
        offers.append({"offer_id": offer,
                       **compare(whole.get("treated", {}), whole.get("held_out", {})),
                       "by_tier": by(offer, "tier:", ("treated", "held_out")),
                       "by_segment": by(offer, "segment:", ("treated", "held_out")),
                       "qini": _qini(rows.get(offer, ()), since_h, until_h)})
    names = ("treatment", "control")
    whole = cells[ANY].get("all", {}) if ANY in cells else {}
    overall = {**compare(whole.get("treatment", {}), whole.get("control", {}), names),
               "by_tier": by(ANY, "tier:", names) if ANY in cells else {},
               "by_segment": by(ANY, "segment:", names) if ANY in cells else {}}
    return {"offers": offers, "overall": overall}
