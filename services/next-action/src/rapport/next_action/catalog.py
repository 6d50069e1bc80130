"""The offer catalog; eligibility uses the shared declarative conditions.

Kinds: ``offer`` (the default), ``retention`` and ``cross_sell`` are marketing, which
needs the channel's consent (:mod:`.consent`); ``service`` and ``no_action`` are not.
"""

from __future__ import annotations

import math
from datetime import datetime
from enum import StrEnum
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from rapport.shared.conditions import Condition
from rapport.shared.events import Channel


class OfferKind(StrEnum):
    OFFER = "offer"
    RETENTION = "retention"
    CROSS_SELL = "cross_sell"
    SERVICE = "service"
    NO_ACTION = "no_action"


MARKETING = frozenset({OfferKind.OFFER, OfferKind.RETENTION, OfferKind.CROSS_SELL})


class ContactLimits(BaseModel):
    """How often one person may get an offer, counted across every channel."""

    model_config = ConfigDict(extra="forbid")

    max: int | None = Field(default=None, ge=1, le=1000, description="made at most N times...")
    days: float | None = Field(default=None, gt=0, le=3650, description="...in D days")
    pause_after_rejections: int | None = Field(default=None, ge=1, le=1000)
    pause_days: float | None = Field(default=None, gt=0, le=3650)
    stop_after_accept: bool = False

    @model_validator(mode="after")
    def _pairs(self) -> ContactLimits:
        if (self.max is None) != (self.days is None):
            raise ValueError("max and days go together: made at most max times in days")
        if (self.pause_after_rejections is None) != (self.pause_days is None):
            raise ValueError("pause_after_rejections and pause_days go together")
        return self


class Budget(BaseModel):
    """How many a day an offer may be made (or accepted), paced through the UTC day so
    it is not spent by breakfast (:mod:`.budgets`)."""

    model_config = ConfigDict(extra="forbid")

    per_day: int = Field(ge=1, le=1_000_000_000, description="counted at most N per UTC day")
    counts: Literal["made", "accepted"] = Field(
        default="made", description="what is counted: offers made, or acceptances")


class Offer(BaseModel):
    model_config = ConfigDict(extra="forbid")

    offer_id: str = Field(pattern=r"^[A-Za-z0-9][A-Za-z0-9_.:-]{0,99}$")
    name: str = Field(min_length=1, max_length=200)
    description: str = Field(default="", max_length=2000)
    channels: list[Channel] = Field(min_length=1)
    value: float = Field(description="Net margin to the business if accepted")
    cost: float = Field(ge=0, description="Cost of making the offer, paid whether or not accepted")
    eligibility: list[Condition] = Field(default_factory=list)
    active: bool = True
    kind: OfferKind = OfferKind.OFFER
    placements: list[str] = Field(
        default_factory=list, max_length=50,
        description="Placements it may appear in (empty: any placement, or none given)")
    valid_from: datetime | None = Field(default=None, description="Not made before")
    valid_until: datetime | None = Field(default=None, description="Not made from then on")
    contact: ContactLimits | None = None
    priority: float = Field(default=1.0, gt=0, le=100, description=(
        "Business priority: multiplies the ranking score (1: neutral)"))
    category: str | None = Field(default=None, max_length=100, description=(
        "Product category it promotes (matched against active demand spikes)"))
    discount: bool = Field(default=False, description=(
        "A price cut: not made to a customer likely to buy anyway at full price"))
    budget: Budget | None = None
    holdout_share: float | None = Field(default=None, ge=0, le=0.5, description=(
        "Chance it is withheld when it would have been made (default: the policy's)"))

    @property
    def marketing(self) -> bool:
        return self.kind in MARKETING

    @model_validator(mode="after")
    def _window(self) -> Offer:
        for name in ("valid_from", "valid_until"):
            at = getattr(self, name)
            if at is not None and at.tzinfo is None:
                raise ValueError(f"{name} needs a time zone (e.g. 2026-12-01T00:00:00Z)")
        if self.valid_from and self.valid_until and self.valid_until <= self.valid_from:
            raise ValueError("valid_until must be after valid_from")
        return self

    @field_validator("value", "cost", "priority")
    @classmethod
    def _finite(cls, v: float) -> float:
        if not math.isfinite(v):
            raise ValueError("must be a finite number")
        return v


class Catalog(BaseModel):
    offers: list[Offer] = Field(max_length=10_000)
    version: int = Field(default=0, description="Counts the catalogs put, 1 for the first")

    @model_validator(mode="after")
    def _unique_ids(self) -> Catalog:
        seen: set[str] = set()
        dupes = {o.offer_id for o in self.offers if o.offer_id in seen or seen.add(o.offer_id)}
        if dupes:
            raise ValueError(f"duplicate offer_id: {', '.join(sorted(dupes))}")
        return self
