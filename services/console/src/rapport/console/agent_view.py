"""The customer 360 as the agent screen shows it, from the profile, scoring and
next-action answers (pure)."""

from __future__ import annotations

from typing import Any

from . import reasons

ORDER_EVENTS = ("Order Completed", "Order Refunded")
SERVICE_EVENTS = ("Call Started", "Call Ended", "Ticket Created", "Complaint Filed",
                  "Survey Responded")


def display_name(customer: dict[str, Any]) -> str:
    traits = customer.get("traits") or {}
    name = traits.get("name") or " ".join(
        str(traits[k]) for k in ("first_name", "last_name") if traits.get(k))
    return str(name) if name else f"Customer {customer.get('customer_id', '')}"


def entry_text(tp: dict[str, Any]) -> str:
    """One line of the timeline: what happened, with its telling property."""
    props = tp.get("properties") or {}
    what = tp.get("event") or tp.get("name") or tp.get("type", "")
    detail = ""
    if tp.get("event") == "Order Completed":
        detail = f"order {props.get('order_id', '')}, total {reasons.money(props.get('total'))}"
    elif tp.get("event") == "Order Refunded":
        detail = f"order {props.get('order_id', '')}, refunded {reasons.money(props.get('total'))}"
    elif tp.get("event") == "Call Started" and props.get("reason"):
        detail = f"reason: {props['reason']}"
    elif tp.get("event") == "Call Ended" and props.get("duration_s") is not None:
        detail = f"{props['duration_s']} s, {'resolved' if props.get('resolved') else 'open'}"
    elif tp.get("event") == "Survey Responded" and props.get("nps") is not None:
        detail = f"NPS {props['nps']}"
    elif props.get("product_id"):
        detail = f"{props.get('product_id')} ({props.get('category', '')})"
    elif props.get("query"):
        detail = "search"
    return f"{what}: {detail}" if detail else str(what)


def customer_view(customer: dict[str, Any], timeline: list[dict[str, Any]],
                  scores: dict[str, Any] | None) -> dict[str, Any]:
    scores = scores or {}
    rfm_in = customer.get("rfm") or {}
    entries = [{**tp, "text": entry_text(tp)} for tp in timeline]
    return {
        "customer_id": customer.get("customer_id"),
        "name": display_name(customer),
        "identities": customer.get("identities") or [],
        "channels": sorted((customer.get("channels") or {}).items(),
                           key=lambda kv: -(kv[1] or {}).get("count", 0)),
        "segments": customer.get("segments") or [],
        "consents": customer.get("consents") or {},
        "metrics": customer.get("metrics") or {},
        "region": (customer.get("traits") or {}).get("region"),
        "tier": scores.get("value_tier"),
        "tier_reason": reasons.tier_reason(scores.get("value_tier"), scores.get("profit")),
        "clv": scores.get("clv") or {},
        "clv_reason": reasons.clv_reason(scores.get("clv")),
        "churn": scores.get("churn_risk"),
        "churn_level": reasons.churn_level(scores.get("churn_risk")),
        "churn_reason": reasons.churn_reason(scores.get("churn_risk"),
                                             rfm_in.get("recency_days")),
        "rfm": scores.get("rfm") or {},
        "rfm_reason": reasons.rfm_reason(scores.get("rfm")),
        "orders": [e for e in entries if e.get("event") in ORDER_EVENTS][:5],
        "contacts": [e for e in entries if e.get("event") in SERVICE_EVENTS][:5],
        "timeline": entries,
    }


def actions_view(decision: dict[str, Any] | None, churn_risk: float | None
                 ) -> list[dict[str, Any]]:
    """The decision's actions (best first, at most three) with their one-line reason."""
    if not decision:
        return []
    return [{**a, "line": reasons.action_line(a, churn_risk)}
            for a in (decision.get("actions") or [])[:3]]
