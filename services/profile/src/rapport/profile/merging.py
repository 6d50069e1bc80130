"""Two profiles found to be one person, merged: exactly what folding both histories into
one profile would have given, so a merge commutes with the fold (:mod:`.domain`)."""

from __future__ import annotations

from datetime import datetime

from rapport.shared.facts import decay
from rapport.shared.profiles import MAX_SIGNALS, Affinity, ChannelActivity, CustomerProfile

from . import limits
from .domain import (
    DEFAULT_POLICY,
    FoldPolicy,
    add_identities,
    cap_affinities,
    earliest,
    latest,
    replaces,
)

_EARLIEST = ("first_seen", "first_order_at")
_LATEST = ("last_seen", "last_order_at", "unsubscribed_at")
_NOT_SUMMED = {*_EARLIEST, *_LATEST, "last_nps", "last_nps_at"}


def _combine_affinity(a: Affinity, b: Affinity, half_life_days: float) -> Affinity:
    if a.as_of is None or b.as_of is None:
        return a if b.as_of is None else b
    as_of = max(a.as_of, b.as_of)
    return Affinity(score=decay(a.score, a.as_of, as_of, half_life_days)
                    + decay(b.score, b.as_of, as_of, half_life_days), as_of=as_of)


def merge(survivor: CustomerProfile, absorbed: CustomerProfile, *, processed_at: datetime,
          policy: FoldPolicy = DEFAULT_POLICY) -> CustomerProfile:
    """Two profiles found to be one person: exactly what folding both histories into
    one profile would have given (counts and sums add, first seen is the minimum, last
    seen the maximum, the latest trait wins)."""
    if absorbed.customer_id in survivor.merged_from or absorbed.customer_id == \
            survivor.customer_id:
        return survivor
    p = survivor.model_copy(deep=True)
    m, o = p.metrics, absorbed.metrics
    for field in type(m).model_fields:
        mine, theirs = getattr(m, field), getattr(o, field)
        if field in _NOT_SUMMED or theirs is None:
            continue
        total = mine + theirs
        setattr(m, field, limits.count(total) if isinstance(total, int) else
                limits.clamp(total))
    for field in _EARLIEST:
        if getattr(o, field) is not None:
            setattr(m, field, earliest(getattr(m, field), getattr(o, field)))
    for field in _LATEST:
        if getattr(o, field) is not None:
            setattr(m, field, latest(getattr(m, field), getattr(o, field)))
    if o.last_nps_at is not None and replaces(o.last_nps_at, o.last_nps, m.last_nps_at,
                                               m.last_nps):
        m.last_nps, m.last_nps_at = o.last_nps, o.last_nps_at
    for field in ("revenue", "discounts", "returned_value", "margin", "margin_revenue"):
        setattr(m, field, round(getattr(m, field), 2))

    p.purchases = p.purchases.merged(absorbed.purchases)
    p.signals = sorted([*p.signals, *absorbed.signals])[-MAX_SIGNALS:]
    add_identities(p, absorbed.identities)
    for key, value in absorbed.traits.items():
        at = absorbed.trait_times.get(key)
        if at is not None and limits.trait_fits(p.traits, key, value) and \
                replaces(at, value, p.trait_times.get(key), p.traits.get(key)):
            p.traits[key], p.trait_times[key] = value, at
    for kind, consent in absorbed.consents.items():
        mine = p.consents.get(kind)
        if replaces(consent.at, consent.value, mine and mine.at, mine and mine.value):
            p.consents[kind] = consent
    for name, activity in absorbed.channels.items():
        ch = p.channels.setdefault(name, ChannelActivity())
        ch.count += activity.count
        if activity.last_seen is not None:
            ch.last_seen = latest(ch.last_seen, activity.last_seen)
    for category, affinity in absorbed.affinities.items():
        current = p.affinities.get(category)
        p.affinities[category] = affinity if current is None else _combine_affinity(
            current, affinity, policy.affinity_half_life_days)
    cap_affinities(p, policy)
    seen = [i for i in absorbed.recent_message_ids if i not in p.recent_message_ids]
    p.recent_message_ids = (p.recent_message_ids + seen)[-policy.recent_ids:]
    p.merged_from = sorted({*p.merged_from, absorbed.customer_id, *absorbed.merged_from}
                           )[:limits.MAX_MERGED_FROM]
    p.updated_at = processed_at
    return p
