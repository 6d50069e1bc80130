"""The contact policy and daily budgets, pure: rules per person across offers, the
pacing of budgets through the day, and what a reservation says about each candidate.

A contact policy rule ("at most 2 marketing emails in 7 days") counts *decisions* that
made at least one marketing action on its medium, across offers: an email with three
offers is one email. When a rule's cap is reached, every marketing candidate of the
decision is held back (verdict ``rule:<name>``); service and no-action offers never are.

The media of a decision are its channel, ``sms`` too when it is an SMS (as consent sees
it: :func:`.consent.is_sms`), and ``*`` (every channel). A rule on ``mobile`` therefore
counts SMS as well as push; a rule on ``sms`` counts SMS only.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

from rapport.shared.events import Channel

from .catalog import Budget

KEEP_TIMES = 200
"""Times kept per history field (:mod:`.contacts`): no cap may be higher."""
ANY = "*"


class ContactRule(BaseModel):
    """At most ``max`` marketing contacts of one person in ``days`` on ``channel``."""

    model_config = ConfigDict(extra="forbid")

    name: str = Field(pattern=r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$")
    channel: Channel | Literal["sms"] | None = Field(
        default=None, description="the medium counted (None: every channel)")
    max: int = Field(ge=1, le=KEEP_TIMES)
    days: float = Field(gt=0, le=366)

    @property
    def medium(self) -> str:
        return ANY if self.channel is None else str(self.channel)

    def describe(self, count: int) -> str:
        """Why a marketing candidate is held back, e.g. "contact policy 'email-weekly':
        already 2 marketing emails in 7 days (any offer)"."""
        one, many = {"email": ("email", "emails"), "sms": ("SMS", "SMS messages"),
                     ANY: ("contact on any channel", "contacts on any channel")}.get(
            self.medium, (f"contact on {self.medium}", f"contacts on {self.medium}"))
        return (f"contact policy '{self.name}': already {count} marketing "
                f"{one if count == 1 else many} in {self.days:g} days (any offer)")


DEFAULT_RULES: tuple[ContactRule, ...] = (
    ContactRule(name="email-weekly", channel=Channel.EMAIL, max=2, days=7),
    ContactRule(name="sms-weekly", channel="sms", max=2, days=7),
)
"""Outbound media only: an email or SMS is pushed to the person (fatigue, unsubscribes),
while web, app and call-centre decisions answer the person's own visit, where a cap
would only leave the page empty."""


def media(channel: Channel, sms: bool) -> tuple[str, ...]:
    """What a decision on ``channel`` counts against (see the module docstring)."""
    return (str(channel), *(("sms",) if sms else ()), ANY)


def in_effect(rules: tuple[ContactRule, ...] | list[ContactRule], channel: Channel,
              sms: bool) -> list[ContactRule]:
    on = set(media(channel, sms))
    return [rule for rule in rules if rule.medium in on]


def day_of(at: datetime) -> int:
    """The UTC day (days since the epoch) budgets count ``at`` in."""
    return int(at.timestamp() // 86400)


def day_fraction(at: datetime) -> float:
    """How much of the UTC day has passed at ``at``, in [0, 1)."""
    u = at.astimezone(UTC)
    return (u.hour * 3600 + u.minute * 60 + u.second + u.microsecond / 1e6) / 86400


def paced_cap(per_day: int, at: datetime, ahead: float) -> int:
    """How many may have been counted today by ``at``: ceil(N * min(1, f + ahead)) with
    ``f`` the share of the UTC day gone, so the budget is spread over the day, ``ahead``
    of schedule by a margin (1/24: an hour's worth)."""
    share = min(1.0, day_fraction(at) + ahead)
    return min(per_day, math.ceil(per_day * share - 1e-9))


def budget_reason(budget: Budget, counted: int, cap: int) -> str:
    """E.g. "daily budget: 40 of 100 made so far today, paced to 38 by now"."""
    return (f"daily budget: {counted} of {budget.per_day} {budget.counts} so far today, "
            f"paced to {cap} by now")


@dataclass(frozen=True)
class Reservation:
    """What :meth:`.contacts.ContactBook.reserve` decided for one decision."""

    verdicts: dict[str, str]
    """Per ranked offer: ``made``, ``not_chosen``, ``capped``, ``paused``, ``accepted``,
    ``budget`` or ``rule:<name>``."""
    probabilities: dict[str, float]
    """Per allowed offer (made or not chosen): its chance of being made in this decision."""
    explored: bool = False
    reasons: dict[str, str] = field(default_factory=dict)
    """Readable why-not for the ``rule:`` and ``budget`` verdicts (and exploration)."""

    @property
    def made(self) -> list[str]:
        return [o for o, v in self.verdicts.items() if v == "made"]
