"""The offer catalog and its eligibility conditions (declarative, no ``eval``)."""

from __future__ import annotations

import math
from enum import StrEnum
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from rapport.shared.events import Channel

_MISSING = object()


class Op(StrEnum):
    EQ = "eq"
    NE = "ne"
    GT = "gt"
    GTE = "gte"
    LT = "lt"
    LTE = "lte"
    IN = "in"
    NOT_IN = "not_in"
    EXISTS = "exists"
    MISSING = "missing"


class Condition(BaseModel):
    """``field`` is a dotted path into ``profile``, ``scores`` or ``context``,
    e.g. ``scores.value_tier`` or ``profile.metrics.orders``."""

    model_config = ConfigDict(extra="forbid")

    field: str = Field(pattern=r"^(profile|scores|context)(\.[A-Za-z0-9_]+)+$")
    op: Op
    value: Any = None

    @model_validator(mode="after")
    def _value_fits_op(self) -> Condition:
        if self.op in (Op.IN, Op.NOT_IN) and not isinstance(self.value, list):
            raise ValueError(f"'{self.op}' needs a list value")
        if self.op in (Op.GT, Op.GTE, Op.LT, Op.LTE) and (
                isinstance(self.value, bool) or not isinstance(self.value, int | float)):
            raise ValueError(f"'{self.op}' needs a number value")
        return self

    def describe(self) -> str:
        if self.op in (Op.EXISTS, Op.MISSING):
            return f"{self.field} {self.op}"
        return f"{self.field} {self.op} {self.value!r}"

    def holds(self, facts: dict[str, Any]) -> bool:
        actual = lookup(facts, self.field)
        if self.op is Op.EXISTS:
            return actual is not _MISSING and actual is not None
        if self.op is Op.MISSING:
            return actual is _MISSING or actual is None
        if actual is _MISSING:
            return False
        match self.op:
            case Op.EQ:
                return bool(actual == self.value)
            case Op.NE:
                return bool(actual != self.value)
            case Op.IN:
                return actual in self.value
            case Op.NOT_IN:
                return actual not in self.value
        if isinstance(actual, bool) or not isinstance(actual, int | float):
            return False
        match self.op:
            case Op.GT:
                return actual > self.value
            case Op.GTE:
                return actual >= self.value
            case Op.LT:
                return actual < self.value
            case _:
                return actual <= self.value


def lookup(facts: dict[str, Any], path: str) -> Any:
    node: Any = facts
    for part in path.split("."):
        if not isinstance(node, dict) or part not in node:
            return _MISSING
        node = node[part]
    return node


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
