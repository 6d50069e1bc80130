"""Plain-language texts for what an agent reads in a call: scores and offers in one
line each. Pure functions of the services' JSON."""

from __future__ import annotations

from typing import Any

TIER_TEXT = {"best": "one of the most valuable customers",
             "average": "an average-value customer",
             "worst": "among the least profitable customers"}


def money(value: float | None) -> str:
    if value is None:
        return "-"
    return f"{value:,.0f}" if abs(value) >= 100 else f"{value:,.2f}".rstrip("0").rstrip(".")


def churn_level(risk: float | None) -> str:
    if risk is None:
        return "unknown"
    return "high" if risk >= 0.6 else "medium" if risk >= 0.3 else "low"


def churn_reason(risk: float | None, recency_days: float | None) -> str:
    """'high churn risk (72 %): last purchase 140 days ago'."""
    if risk is None:
        return "churn risk not scored yet"
    text = f"{churn_level(risk)} churn risk ({risk:.0%})"
    if recency_days is None:
        return f"{text}: no purchase yet"
    days = int(recency_days)
    return f"{text}: last purchase {days} day{'s' if days != 1 else ''} ago"


def clv_reason(clv: dict[str, Any] | None) -> str:
    """'expected 1.4 orders worth 85 in the next 90 days; 80 % likely still active'."""
    if not clv:
        return "lifetime value not scored yet"
    orders = clv.get("expected_orders_90d")
    value = clv.get("expected_value_90d")
    alive = clv.get("p_alive")
    parts = []
    if orders is not None:
        parts.append(f"expected {orders:.1f} orders worth {money(value)} in the next 90 days")
    if alive is not None:
        parts.append(f"{alive:.0%} likely still active")
    return "; ".join(parts) or "lifetime value not scored yet"


def rfm_reason(rfm: dict[str, Any] | None) -> str:
    """'R4 F2 M3 (label): bought recently, seldom, spends average amounts'."""
    if not rfm or rfm.get("r") is None:
        return "no purchases to score"
    r, f, m = rfm["r"], rfm["f"], rfm["m"]
    rec = "recently" if r >= 4 else "a while ago" if r >= 2 else "long ago"
    freq = "often" if f >= 4 else "now and then" if f >= 2 else "rarely"
    mon = "spends a lot" if m >= 4 else "average spend" if m >= 2 else "spends little"
    label = f" ({rfm['label']})" if rfm.get("label") else ""
    return f"R{r} F{f} M{m}{label}: bought {rec}, {freq}; {mon}"


def tier_reason(tier: str | None, profit: float | None) -> str:
    if tier is None:
        return "value tier not scored yet"
    text = TIER_TEXT.get(tier, tier)
    return f"{text} (profit to date {money(profit)})" if profit is not None else text


def action_line(action: dict[str, Any], churn_risk: float | None = None) -> str:
    """'high churn risk; retention credit worth 30 at a cost of 4': why this offer now,
    what it is worth and what it costs."""
    parts: list[str] = []
    if churn_risk is not None and churn_risk >= 0.6:
        parts.append("high churn risk")
    reasons = [r for r in action.get("reasons") or [] if r and not r.startswith("chosen with")]
    if reasons and len(parts) == 0:
        parts.append(reasons[0])
    name = action.get('name', action.get('offer_id', 'offer'))
    deal = f"{name} worth {money(action.get('value'))}"
    if action.get("cost") is not None:
        deal += f" at a cost of {money(action['cost'])}"
    parts.append(deal)
    if action.get("propensity") is not None:
        parts.append(f"{action['propensity']:.0%} likely to accept")
    return "; ".join(parts)
