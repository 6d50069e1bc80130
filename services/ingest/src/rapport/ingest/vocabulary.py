"""The numbers of the event vocabulary, checked before they reach anyone's sums.

Profiles add up revenue, discounts, margin, units, call time and NPS for years: one
``total`` of -5000 or 1e308 (or a string that a later reader coerces) stays in them
for good. Each track event with such numbers has a row of rules in
:func:`event_rules`; other events, and every other property, pass unchanged. Pure."""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from .domain import Caps

Problem = tuple[str, str, str]
"""(reason code for metrics, where below the checked field, what is wrong): the
location is only spelled out for a problem, as most values are fine."""
Check = Callable[[Any], list[Problem]]

_NUMBERS = (int, float)
_JSON_KINDS = {str: "a string", bool: "true or false", dict: "an object", list: "an array"}


def _g(x: float) -> str:
    return f"{x:g}"


def number(low: float, high: float, *, above_low: bool = False) -> Check:
    """A finite JSON number in ``[low, high]`` (``(low, high]`` with ``above_low``)."""
    span = f"{'above' if above_low else 'from'} {_g(low)} {'and at most' if above_low else 'to'}"

    def check(value: Any) -> list[Problem]:
        if isinstance(value, bool) or not isinstance(value, _NUMBERS):
            kind = _JSON_KINDS.get(type(value), type(value).__name__)
            return [("invalid_number", "", f"must be a number, not {kind}")]
        if not math.isfinite(value):
            return [("invalid_number", "", "must be a finite number")]
        if value < low or value > high or (above_low and value == low):
            return [("invalid_number", "", f"must be a number {span} {_g(high)}, "
                                           f"not {_g(value)}")]
        return []

    return check


def _fields(rules: dict[str, Check], values: dict[str, Any]) -> list[Problem]:
    """The problems of the ruled fields present in ``values``; null means not given."""
    problems: list[Problem] = []
    for name, check in rules.items():
        value = values.get(name)
        if value is not None:
            problems += [(r, f".{name}{below}", text) for r, below, text in check(value)]
    return problems


def lines(rules: dict[str, Check], max_lines: int) -> Check:
    """An array of at most ``max_lines`` objects, each checked by ``rules``."""

    def check(value: Any) -> list[Problem]:
        if not isinstance(value, list):
            return [("invalid_products", "", "must be an array of objects")]
        if len(value) > max_lines:
            return [("invalid_products", "", f"more than {max_lines} lines")]
        problems: list[Problem] = []
        for i, line in enumerate(value):
            if not isinstance(line, dict):
                problems.append(("invalid_products", f"[{i}]", "must be an object"))
            elif found := _fields(rules, line):
                problems += [(r, f"[{i}]{below}", text) for r, below, text in found]
        return problems

    return check


def event_rules(caps: Caps) -> dict[str, dict[str, Check]]:
    """Per track event, its numeric properties and their rules."""
    amount = number(0, caps.amount)
    quantity = number(0, caps.quantity, above_low=True)
    product = {"price": amount, "quantity": quantity}
    return {
        "Order Completed": {"total": amount, "revenue": amount, "discount": amount,
                            "products": lines({**product, "cost": amount}, caps.products)},
        "Order Refunded": {"total": amount},
        "Product Viewed": product,
        "Product Added": product,
        "Call Ended": {"duration_s": number(0, caps.duration_s)},
        "Survey Responded": {"nps": number(caps.nps_min, caps.nps_max)},
    }


def property_errors(table: dict[str, dict[str, Check]], event: str | None,
                    properties: dict[str, Any]) -> list[tuple[str, str]]:
    """(reason, readable error) for each ruled property of ``event`` that is wrong."""
    rules = table.get(event or "")
    if not rules:
        return []
    return [(r, f"properties{where}: {text}") for r, where, text in _fields(rules, properties)]
