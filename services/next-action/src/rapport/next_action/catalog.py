"""The offer catalog; eligibility uses the shared declarative conditions."""

from __future__ import annotations

import math

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from rapport.shared.conditions import Condition
from rapport.shared.events import Channel


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

    @field_validator("value", "cost")
    @classmethod
    def _finite(cls, v: float) -> float:
        if not math.isfinite(v):
            raise ValueError("must be a finite number")
        return v


class Catalog(BaseModel):
    offers: list[Offer] = Field(max_length=10_000)

    @model_validator(mode="after")
    def _unique_ids(self) -> Catalog:
        seen: set[str] = set()
        dupes = {o.offer_id for o in self.offers if o.offer_id in seen or seen.add(o.offer_id)}
        if dupes:
            raise ValueError(f"duplicate offer_id: {', '.join(sorted(dupes))}")
        return self
