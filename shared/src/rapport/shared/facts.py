"""The profile as readers see it at a moment: the customer 360's body, and the facts
every condition tests (segments in the profile service, offer eligibility in
next-action), so a condition means the same wherever it is written.

Pure: no I/O, no clock.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from .profiles import CustomerProfile

AFFINITY_HALF_LIFE_DAYS = 30.0
HIDDEN = {"trait_times", "recent_message_ids", "purchases", "signals"}


def decay(score: float, since: datetime, until: datetime, half_life_days: float) -> float:
    days = (until - since).total_seconds() / 86400
    return score * 0.5 ** (days / half_life_days)


def affinities_at(profile: CustomerProfile, now: datetime,
                  half_life_days: float = AFFINITY_HALF_LIFE_DAYS) -> dict[str, float]:
    """Category affinities decayed to ``now``, strongest first."""
    scores = {c: decay(a.score, a.as_of, max(now, a.as_of), half_life_days)
              for c, a in profile.affinities.items() if a.as_of is not None}
    return {c: round(v, 4) for c, v in sorted(scores.items(), key=lambda kv: -kv[1])}


def describe(profile: CustomerProfile, now: datetime,
             half_life_days: float = AFFINITY_HALF_LIFE_DAYS) -> dict[str, Any]:
    """The profile at ``now``: consents as booleans, affinities decayed, RFM inputs and
    derived metrics (average order value, margin rate, NPS, purchase days) filled in."""
    body = profile.model_dump(mode="json", exclude=HIDDEN)
    body["rfm"] = profile.rfm(now).model_dump(mode="json")
    m = profile.metrics
    metrics = body["metrics"]
    metrics["average_order_value"] = round(m.revenue / m.orders, 2) if m.orders else None
    metrics["margin_rate"] = round(m.margin / m.margin_revenue, 4) if m.margin_revenue else None
    metrics["nps"] = round(m.nps_sum / m.nps_responses, 2) if m.nps_responses else None
    summary = profile.purchases.summary(now)
    metrics["purchase_days"] = summary.purchase_days if summary else 0
    body["affinities"] = affinities_at(profile, now, half_life_days)
    body["consents"] = {k: c.value for k, c in profile.consents.items()}
    return body
