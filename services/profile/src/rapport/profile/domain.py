"""The profile as a pure fold over touchpoints: no I/O, no clock.

``apply`` is deterministic in its inputs, so a rebuild from Kafka gives the
same profile as the live stream did.
"""

from __future__ import annotations

import math
from datetime import datetime
from typing import Any

from rapport.shared.events import MessageType, Touchpoint
from rapport.shared.profiles import ChannelActivity, CustomerProfile, Identity

IDENTIFYING_TRAITS = ("email", "phone", "loyalty_id")
SERVICE_EVENTS = frozenset({"Call Started", "Ticket Created", "Complaint Filed"})


def number(value: Any) -> float:
    """A finite number from a property, else 0 (bad numbers never poison sums)."""
    if isinstance(value, bool) or not isinstance(value, int | float):
        return 0.0
    return float(value) if math.isfinite(value) else 0.0


def _earliest(a: datetime | None, b: datetime) -> datetime:
    return b if a is None or b < a else a


def _latest(a: datetime | None, b: datetime) -> datetime:
    return b if a is None or b > a else a


def identities_of(tp: Touchpoint) -> list[Identity]:
    found = []
    if tp.user_id:
        found.append(Identity(type="user_id", value=tp.user_id))
    if tp.anonymous_id:
        found.append(Identity(type="anonymous_id", value=tp.anonymous_id))
    if tp.previous_id:
        found.append(Identity(type="previous_id", value=tp.previous_id))
    for trait in IDENTIFYING_TRAITS:
        value = tp.traits.get(trait)
        if isinstance(value, str) and value.strip():
            found.append(Identity(type=trait, value=normalize_identifier(trait, value)))
    return found


def normalize_identifier(kind: str, value: str) -> str:
    value = value.strip()
    if kind == "email":
        return value.lower()
    if kind == "phone":
        return "".join(ch for ch in value if ch.isdigit() or ch == "+")
    return value


def apply(profile: CustomerProfile | None, tp: Touchpoint, *, customer_id: str,
          processed_at: datetime) -> CustomerProfile:
    """Fold one touchpoint into a customer's profile and return the new profile."""
    p = (profile.model_copy(deep=True) if profile is not None
         else CustomerProfile(customer_id=customer_id))
    at = tp.timestamp
    m = p.metrics

    known = set(p.identities)
    p.identities.extend(i for i in identities_of(tp) if i not in known)

    m.touchpoints += 1
    m.first_seen = _earliest(m.first_seen, at)
    m.last_seen = _latest(m.last_seen, at)

    ch = p.channels.setdefault(tp.channel.value, ChannelActivity())
    ch.count += 1
    ch.last_seen = _latest(ch.last_seen, at)

    if tp.type in (MessageType.IDENTIFY, MessageType.GROUP) or tp.traits:
        for key, value in tp.traits.items():
            seen = p.trait_times.get(key)
            if seen is None or at >= seen:
                p.traits[key] = value
                p.trait_times[key] = at

    if tp.type is MessageType.TRACK:
        props = tp.properties
        if tp.event == "Order Completed":
            m.orders += 1
            m.revenue += number(props.get("revenue", props.get("total")))
            m.discounts += number(props.get("discount"))
            m.last_order_at = _latest(m.last_order_at, at)
            m.first_order_at = _earliest(m.first_order_at, at)
        elif tp.event == "Order Refunded":
            m.returns += 1
            m.returned_value += number(props.get("total"))
        elif tp.event in SERVICE_EVENTS:
            m.service_contacts += 1

    m.revenue = round(m.revenue, 2)
    m.discounts = round(m.discounts, 2)
    m.returned_value = round(m.returned_value, 2)
    p.updated_at = processed_at
    return p
