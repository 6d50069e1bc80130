"""Consent, on every channel: which offers a customer's consents allow where.

Pure. A marketing offer (kinds offer, retention, cross_sell) by email needs the
``marketing_email`` consent, and by SMS the ``marketing_sms`` consent; SMS is the
``mobile`` channel with the placement ``sms``, or any channel whose request context says
``"medium": "sms"``. A consent is given only by a ``true`` on the customer's profile
(sent as an identify trait ``consent``); an unknown customer has given none. Service
messages and "no action" need no marketing consent.
"""

from __future__ import annotations

from typing import Any

from rapport.shared.events import Channel

from .catalog import Offer


def is_sms(channel: Channel, placement: str | None, context: dict[str, Any]) -> bool:
    return (channel is Channel.MOBILE and (placement or "").lower() == "sms") or \
        str(context.get("medium", "")).lower() == "sms"


def needed(offer: Offer, channel: Channel, placement: str | None,
           context: dict[str, Any]) -> str | None:
    """The consent this offer needs here, if any."""
    if not offer.marketing:
        return None
    if is_sms(channel, placement, context):
        return "marketing_sms"
    if channel is Channel.EMAIL:
        return "marketing_email"
    return None


def refusal(offer: Offer, channel: Channel, placement: str | None, context: dict[str, Any],
            consents: dict[str, Any]) -> str | None:
    """Why consent rules this offer out here (None when it does not)."""
    kind = needed(offer, channel, placement, context)
    if kind is None or consents.get(kind) is True:
        return None
    medium = "SMS" if kind == "marketing_sms" else "email"
    return f"no {kind} consent: no marketing by {medium}"
