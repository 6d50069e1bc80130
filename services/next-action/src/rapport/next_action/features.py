"""What the response-propensity learner knows of a customer: a fixed vector of generic
retail descriptors (recency, frequency, spend, churn risk, value tier, discount habit,
service trouble, email engagement, channel mix), each scaled into [0, 1] so that no
feature dominates the learner's updates and a missing value is 0 with, where the
absence itself says something, a ``*_missing`` indicator.

Pure: no I/O, no clock. ``profile`` is :func:`rapport.shared.facts.describe`'s body
and ``scores`` :class:`rapport.shared.scores.compute.Scores` dumped as JSON.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np

from rapport.shared.events import Channel

CHANNELS = tuple(c.value for c in Channel)
TIERS = ("best", "average", "worst")

_BASE = ("intercept", *(f"channel_{c}" for c in CHANNELS))
_CUSTOMER = (
    "known",
    "rfm_r", "rfm_f", "rfm_m", "rfm_missing",
    "churn_risk", "p_alive",
    *(f"tier_{t}" for t in TIERS),
    "log_orders", "never_ordered", "log_touchpoints", "log_purchase_days",
    "log_recency_days", "log_average_order_value", "log_expected_orders_90d",
    "log_expected_value_90d",
    "discount_share", "has_discounts",
    "has_complaint", "log_complaints", "has_service_contact", "log_service_contacts",
    "has_return",
    "email_open_rate", "email_missing", "unsubscribed",
    "affinity_strength",
    *(f"share_{c}" for c in CHANNELS),
)
FEATURES: tuple[str, ...] = (*_BASE, *_CUSTOMER)
"""The names, in the vector's order (a stored model records them: a change of this list
makes older models incompatible)."""
INDEX = {name: i for i, name in enumerate(FEATURES)}
N_CUSTOMER_START = len(_BASE)


def _num(value: Any) -> float | None:
    if isinstance(value, bool) or not isinstance(value, int | float):
        return None
    v = float(value)
    return v if math.isfinite(v) else None


def _unit(value: float | None) -> float:
    return 0.0 if value is None else min(1.0, max(0.0, value))


def _log(value: float | None, top: float) -> float:
    """log(1 + v) / log(1 + top), clipped to [0, 1]: counts and money span decades."""
    if value is None or value <= 0:
        return 0.0
    return min(1.0, math.log1p(value) / math.log1p(top))


def base_features(channel: str) -> np.ndarray:
    """The intercept and the channel's one-hot: all that is used without a profile."""
    x = np.zeros(len(FEATURES))
    x[0] = 1.0
    key = f"channel_{channel}"
    if key in INDEX:
        x[INDEX[key]] = 1.0
    return x


def customer_features(profile: dict[str, Any] | None, scores: dict[str, Any] | None,
                      channel: str, context: dict[str, Any] | None = None,
                      personalised: bool = True) -> np.ndarray:
    """The vector (float64, ``len(FEATURES)``). Without a profile, or when the customer
    has not consented to personalization (``personalised`` False, or the profile's
    ``personalization`` consent false), only the intercept and
    the channel are set. ``context`` is accepted for request-time descriptors to come;
    none is used yet (its keys are free-form and untrusted)."""
    x = base_features(channel)
    consents = (profile or {}).get("consents") or {}
    if profile is None or not personalised or consents.get("personalization") is False:
        return x
    values = profile_values(profile, scores or {})
    for name, v in values.items():
        x[INDEX[name]] = v
    return x


def profile_values(profile: dict[str, Any], scores: dict[str, Any]) -> dict[str, float]:
    """The customer part of the vector, by name (channel-independent, so a caller
    deciding on many channels can compute it once)."""
    m = profile.get("metrics") or {}
    rfm = scores.get("rfm") or {}
    clv = scores.get("clv") or {}
    out: dict[str, float] = {"known": 1.0}

    r, f, mon = (_num(rfm.get(k)) for k in ("r", "f", "m"))
    if r is None or f is None or mon is None or min(r, f, mon) < 1:
        out["rfm_missing"] = 1.0
    else:
        out["rfm_r"], out["rfm_f"], out["rfm_m"] = ((_unit((v - 1) / 4)) for v in (r, f, mon))
    out["churn_risk"] = _unit(_num(scores.get("churn_risk")))
    out["p_alive"] = _unit(_num(clv.get("p_alive")))
    tier = scores.get("value_tier")
    if tier in TIERS:
        out[f"tier_{tier}"] = 1.0

    orders = _num(m.get("orders")) or 0.0
    out["log_orders"] = _log(orders, 100)
    out["never_ordered"] = float(orders <= 0)
    out["log_touchpoints"] = _log(_num(m.get("touchpoints")), 1000)
    out["log_purchase_days"] = _log(_num(m.get("purchase_days")), 100)
    recency = _num((profile.get("rfm") or {}).get("recency_days"))
    out["log_recency_days"] = _log(recency, 3650) if orders > 0 else 0.0
    out["log_average_order_value"] = _log(_num(m.get("average_order_value")), 10_000)
    out["log_expected_orders_90d"] = _log(_num(clv.get("expected_orders_90d")), 30)
    out["log_expected_value_90d"] = _log(_num(clv.get("expected_value_90d")), 10_000)

    revenue = max(0.0, _num(m.get("revenue")) or 0.0)
    discounts = max(0.0, _num(m.get("discounts")) or 0.0)
    out["discount_share"] = _unit(discounts / (revenue + discounts)) if discounts else 0.0
    out["has_discounts"] = float(discounts > 0)

    complaints = _num(m.get("complaints")) or 0.0
    contacts = _num(m.get("service_contacts")) or 0.0
    out["has_complaint"] = float(complaints > 0)
    out["log_complaints"] = _log(complaints, 20)
    out["has_service_contact"] = float(contacts > 0)
    out["log_service_contacts"] = _log(contacts, 50)
    out["has_return"] = float((_num(m.get("returns")) or 0.0) > 0)

    delivered = _num(m.get("emails_delivered")) or 0.0
    if delivered > 0:
        out["email_open_rate"] = _unit((_num(m.get("emails_opened")) or 0.0) / delivered)
    else:
        out["email_missing"] = 1.0
    out["unsubscribed"] = float(m.get("unsubscribed_at") is not None)

    strengths = [v for v in (_num(a) for a in (profile.get("affinities") or {}).values())
                 if v is not None]
    out["affinity_strength"] = _log(max(strengths, default=0.0), 50)

    channels = profile.get("channels") or {}
    counts = {c: _num((channels.get(c) or {}).get("count")) or 0.0 for c in CHANNELS
              if isinstance(channels.get(c), dict)}
    total = sum(v for v in counts.values() if v > 0)
    for c, v in counts.items():
        if total > 0 and v > 0:
            out[f"share_{c}"] = _unit(v / total)
    return out
