"""Declarative conditions on facts (profile, scores, context): offer eligibility and
segment membership are written as data, never evaluated as code."""

from __future__ import annotations

from enum import StrEnum
from functools import cached_property
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, model_validator

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

    field: str = Field(pattern=r"^(profile|scores|context)(\.[A-Za-z0-9_]+)+$",
                       description="Dotted path, e.g. profile.metrics.orders")
    op: Op
    value: Any = None

    @cached_property
    def _path(self) -> tuple[str, ...]:
        """Split once (a decision tests every offer's conditions)."""
        return tuple(self.field.split("."))

    @cached_property
    def _text(self) -> str:
        return self._describe()

    @model_validator(mode="after")
    def _value_fits_op(self) -> Condition:
        if self.op in (Op.IN, Op.NOT_IN) and not isinstance(self.value, list):
            raise ValueError(f"'{self.op}' needs a list value")
        if self.op in (Op.GT, Op.GTE, Op.LT, Op.LTE) and (
                isinstance(self.value, bool) or not isinstance(self.value, int | float)):
            raise ValueError(f"'{self.op}' needs a number value")
        return self

    def describe(self) -> str:
        return self._text

    def _describe(self) -> str:
        if self.op in (Op.EXISTS, Op.MISSING):
            return f"{self.field} {self.op}"
        return f"{self.field} {self.op} {self.value!r}"

    def holds(self, facts: dict[str, Any]) -> bool:
        actual = _lookup(facts, self._path)
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
    return _lookup(facts, tuple(path.split(".")))


def _lookup(facts: dict[str, Any], path: tuple[str, ...]) -> Any:
    node: Any = facts
    for part in path:
        if type(node) is not dict:
            if not isinstance(node, dict):
                return _MISSING
        node = node.get(part, _MISSING)
        if node is _MISSING:
            return _MISSING
    return node
