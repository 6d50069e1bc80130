"""The profile as a pure fold over touchpoints: no I/O, no clock.

``apply`` is deterministic in its inputs and, for everything a reader sees,
independent of the order touchpoints arrive in: sums and counts commute, first
and last seen are min and max, traits and consents keep the value with the
latest event time, and affinities decay from event time. So a rebuild from
Kafka, or a late event, gives the same profile as the live, in-order stream.
"""

from __future__ import annotations

import hashlib
import math
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from rapport.shared import facts
from rapport.shared.events import MessageType, Touchpoint
from rapport.shared.profiles import (
    Affinity,
    ChannelActivity,
    Consent,
    CustomerProfile,
    Identity,
)
from rapport.shared.purchases import day_of

from . import limits
from .identities import MAX_IDENTITIES, identities_of

CONSENT_KINDS = ("marketing_email", "marketing_sms", "personalization")


@dataclass(frozen=True)
class FoldPolicy:
    affinity_half_life_days: float = 30.0
    affinity_weights: tuple[tuple[str, float], ...] = (
        ("Product Viewed", 1.0), ("Product Added", 3.0), ("Order Completed", 5.0))
    recent_ids: int = 64
    """How many of the latest touchpoints are remembered to recognise resends."""


DEFAULT_POLICY = FoldPolicy()


def number(value: Any) -> float:
    """A finite number from a property within the per-line bound, else 0 (bad numbers
    never poison sums)."""
    if isinstance(value, bool) or not isinstance(value, int | float):
        return 0.0
    try:
        as_float = float(value)
    except OverflowError:  # an integer too large for a float
        return 0.0
    return limits.clamp(as_float, limits.MAX_LINE) if math.isfinite(as_float) else 0.0


def add_identities(p: CustomerProfile, found: list[Identity]) -> None:
    """Add identifiers not yet known, up to the cap (resolution links no more either)."""
    known = set(p.identities)
    for ident in found:
        if len(p.identities) >= MAX_IDENTITIES:
            return
        if ident not in known:
            p.identities.append(ident)
            known.add(ident)


def cap_affinities(p: CustomerProfile, policy: FoldPolicy) -> None:
    """Keep the strongest categories (decayed to the latest event) within the cap."""
    if len(p.affinities) <= limits.MAX_AFFINITIES:
        return
    strength = affinities_at(p, max(a.as_of for a in p.affinities.values() if a.as_of),
                             policy)
    keep = sorted(p.affinities, key=lambda c: (-strength.get(c, 0.0), c))[
        :limits.MAX_AFFINITIES]
    p.affinities = {c: p.affinities[c] for c in keep}


def earliest(a: datetime | None, b: datetime) -> datetime:
    return b if a is None or b < a else a


def latest(a: datetime | None, b: datetime) -> datetime:
    return b if a is None or b > a else a


def message_fingerprint(tp: Touchpoint) -> str:
    return hashlib.blake2b(f"{tp.source}\x1f{tp.message_id}".encode(),
                           digest_size=6).hexdigest()


def replaces(at: datetime, value: Any, seen_at: datetime | None, seen: Any) -> bool:
    """Whether a value from ``at`` replaces one from ``seen_at``: the later wins, and at
    the same instant a fixed order of the values decides, whatever arrived first."""
    if seen_at is None or at > seen_at:
        return True
    return at == seen_at and repr(value) > repr(seen)


_decay = facts.decay


def add_affinity(current: Affinity | None, weight: float, at: datetime,
                 half_life_days: float) -> Affinity:
    if current is None or current.as_of is None:
        return Affinity(score=weight, as_of=at)
    if at >= current.as_of:
        decayed = _decay(current.score, current.as_of, at, half_life_days)
        return Affinity(score=decayed + weight, as_of=at)
    return Affinity(score=current.score + _decay(weight, at, current.as_of, half_life_days),
                    as_of=current.as_of)


def affinities_at(profile: CustomerProfile, now: datetime,
                  policy: FoldPolicy = DEFAULT_POLICY) -> dict[str, float]:
    """Category affinities decayed to ``now``, strongest first."""
    return facts.affinities_at(profile, now, policy.affinity_half_life_days)


def _categories(tp: Touchpoint) -> list[str]:
    props = tp.properties
    if tp.event == "Order Completed" and isinstance(props.get("products"), list):
        found = [p.get("category") for p in props["products"] if isinstance(p, dict)]
    else:
        found = [props.get("category")]
    return [c[:limits.MAX_CATEGORY] for c in found if isinstance(c, str) and c.strip()]


def money(value: Any) -> float:
    """An amount in whole cents: sums of cents are exact, so any order gives the same total."""
    return round(number(value), 2)


def order_value(props: dict[str, Any]) -> float:
    """What an order brought in: Segment's ``revenue``, else its ``total``, else the sum of
    its lines (price x quantity), so an order sent with products only still counts."""
    for name in ("revenue", "total"):
        if isinstance(props.get(name), int | float) and not isinstance(props.get(name), bool):
            return money(props[name])
    products = props.get("products")
    lines = [line for line in products if isinstance(line, dict)] \
        if isinstance(products, list) else []
    return money(sum(number(line.get("price")) * (number(line.get("quantity", 1)) or 1.0)
                     for line in lines))


def _order(p: CustomerProfile, props: dict[str, Any], at: datetime) -> None:
    m = p.metrics
    m.orders += 1
    value = order_value(props)
    m.revenue = limits.clamp(m.revenue + value)
    p.purchases.add(at, value)
    m.discounts = limits.clamp(m.discounts + money(props.get("discount")))
    m.last_order_at = latest(m.last_order_at, at)
    m.first_order_at = earliest(m.first_order_at, at)
    products = props.get("products")
    for line in products if isinstance(products, list) else ():
        if not isinstance(line, dict):
            continue
        quantity = number(line.get("quantity", 1)) or 1.0
        m.units = limits.count(m.units + int(quantity))
        if "cost" in line:
            price, cost = number(line.get("price")), number(line.get("cost"))
            m.margin = limits.clamp(m.margin + money((price - cost) * quantity))
            m.margin_revenue = limits.clamp(m.margin_revenue + money(price * quantity))


def _service_and_email(p: CustomerProfile, tp: Touchpoint, at: datetime) -> None:
    m, props, event = p.metrics, tp.properties, tp.event
    if event == "Order Refunded":
        m.returns += 1
        m.returned_value = limits.clamp(m.returned_value + money(props.get("total")))
        p.add_signal(day_of(at), "refund")
    elif event == "Call Started":
        m.calls += 1
        m.service_contacts += 1
    elif event == "Call Ended":
        m.call_seconds = limits.clamp(m.call_seconds + number(props.get("duration_s")))
        if props.get("resolved") is False:
            p.add_signal(day_of(at), "unresolved_call")
    elif event == "Ticket Created":
        m.tickets += 1
        m.service_contacts += 1
        p.add_signal(day_of(at), "ticket")
    elif event == "Complaint Filed":
        m.complaints += 1
        m.service_contacts += 1
        p.add_signal(day_of(at), "complaint")
    elif event == "Offer Viewed":
        m.offers_viewed += 1
    elif event == "Survey Responded" and isinstance(props.get("nps"), int | float):
        nps = number(props["nps"])
        m.nps_responses += 1
        m.nps_sum = limits.clamp(m.nps_sum + nps)
        if replaces(at, nps, m.last_nps_at, m.last_nps):
            m.last_nps, m.last_nps_at = nps, at
    elif event == "Email Delivered":
        m.emails_delivered += 1
    elif event == "Email Opened":
        m.emails_opened += 1
    elif event == "Email Link Clicked":
        m.emails_clicked += 1
    elif event == "Unsubscribed":
        m.unsubscribed_at = latest(m.unsubscribed_at, at)


def _traits(p: CustomerProfile, tp: Touchpoint, at: datetime) -> None:
    for key, value in tp.traits.items():
        if not limits.trait_fits(p.traits, key, value):
            continue
        if replaces(at, value, p.trait_times.get(key), p.traits.get(key)):
            p.traits[key] = value
            p.trait_times[key] = at
    consent = tp.traits.get("consent")
    if isinstance(consent, dict):
        for kind in CONSENT_KINDS:
            value = consent.get(kind)
            current = p.consents.get(kind)
            if isinstance(value, bool) and replaces(at, value, current and current.at,
                                                     current and current.value):
                p.consents[kind] = Consent(value=value, at=at)


def apply(profile: CustomerProfile | None, tp: Touchpoint, *, customer_id: str,
          processed_at: datetime, policy: FoldPolicy = DEFAULT_POLICY) -> CustomerProfile:
    """Fold one touchpoint into a customer's profile and return the new profile.

    A touchpoint whose message was already applied (a resend that reached Kafka
    twice) returns the profile unchanged.
    """
    return apply_owned(None if profile is None else profile.model_copy(deep=True), tp,
                       customer_id=customer_id, processed_at=processed_at, policy=policy)


def apply_owned(profile: CustomerProfile | None, tp: Touchpoint, *, customer_id: str,
                processed_at: datetime, policy: FoldPolicy = DEFAULT_POLICY,
                ) -> CustomerProfile:
    """:func:`apply` for a profile the caller owns (just loaded, shared with nobody),
    which is updated in place: the stream folds a batch without copying per event."""
    fingerprint = message_fingerprint(tp)
    if profile is not None and fingerprint in profile.recent_message_ids:
        return profile
    p = profile if profile is not None else CustomerProfile(customer_id=customer_id)
    at, m = tp.timestamp, p.metrics
    p.recent_message_ids = [*p.recent_message_ids, fingerprint][-policy.recent_ids:]

    add_identities(p, identities_of(tp))
    m.touchpoints += 1
    m.first_seen = earliest(m.first_seen, at)
    m.last_seen = latest(m.last_seen, at)
    ch = p.channels.get(tp.channel.value)
    if ch is None:
        ch = p.channels[tp.channel.value] = ChannelActivity()
    ch.count += 1
    ch.last_seen = latest(ch.last_seen, at)

    if tp.traits:
        _traits(p, tp, at)
    if tp.type is MessageType.TRACK:
        if tp.event == "Order Completed":
            _order(p, tp.properties, at)
        else:
            _service_and_email(p, tp, at)
        weight = dict(policy.affinity_weights).get(tp.event or "", 0.0)
        for category in _categories(tp) if weight else ():
            p.affinities[category] = add_affinity(p.affinities.get(category), weight, at,
                                                  policy.affinity_half_life_days)
        cap_affinities(p, policy)

    for field in ("revenue", "discounts", "returned_value", "margin", "margin_revenue"):
        setattr(m, field, round(getattr(m, field), 2))
    p.updated_at = processed_at
    return p


def describe(profile: CustomerProfile, now: datetime,
             policy: FoldPolicy = DEFAULT_POLICY) -> dict[str, Any]:
    """The profile as readers see it at ``now`` (:func:`rapport.shared.facts.describe`:
    the API body, and the facts segments and offers test)."""
    return facts.describe(profile, now, policy.affinity_half_life_days)
