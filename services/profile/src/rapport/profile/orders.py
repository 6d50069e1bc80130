"""The order facts of a folded batch: each order and refund the fold applied (a resend
is not applied twice), as next-action's attribution reads them. Pure.

Ids leave only as keyed fingerprints (the profile's, the message's, the order's): the
facts topic carries amounts and times, never a person.
"""

from __future__ import annotations

from collections.abc import Iterable

from rapport.shared.events import OrderFact, Touchpoint
from rapport.shared.privacy import Fingerprints

from .domain import money, number, order_value

KINDS = {"Order Completed": "order", "Order Refunded": "refund"}


def _lines(tp: Touchpoint) -> tuple[float, float]:
    """(list price, cost) of the order's lines sent with a ``cost``."""
    products = tp.properties.get("products")
    priced = costed = 0.0
    for line in products if isinstance(products, list) else ():
        if isinstance(line, dict) and "cost" in line:
            quantity = number(line.get("quantity", 1)) or 1.0
            priced += number(line.get("price")) * quantity
            costed += number(line.get("cost")) * quantity
    return money(priced), money(costed)


def fact(tp: Touchpoint, profile_id: str, fp: Fingerprints) -> OrderFact | None:
    """The order or refund fact of a touchpoint (None for any other event)."""
    kind = KINDS.get(tp.event or "")
    if kind is None:
        return None
    props = tp.properties
    order_id = props.get("order_id")
    order = fp.of("order", str(order_id)) if isinstance(order_id, str | int) and \
        not isinstance(order_id, bool) and str(order_id) else None
    common = {"kind": kind, "customer": fp.profile(profile_id), "order_id": order,
              "message_id": fp.of("message", f"{tp.source}\x1f{tp.message_id}"),
              "occurred_at": tp.timestamp}
    if kind == "refund":
        return OrderFact(**common, revenue=money(number(props.get("total"))))
    discount = money(number(props.get("discount")))
    if isinstance(props.get("revenue"), int | float) and not isinstance(props["revenue"], bool):
        revenue = money(props["revenue"])
    else:
        revenue = money(max(order_value(props) - discount, 0.0))
    priced, costed = _lines(tp)
    return OrderFact(**common, revenue=revenue, discount=discount, costed_revenue=priced,
                     cost=costed)


def facts_of(applied: Iterable[tuple[str, Touchpoint]], fp: Fingerprints) -> list[OrderFact]:
    out = []
    for profile_id, tp in applied:
        f = fact(tp, profile_id, fp)
        if f is not None:
            out.append(f)
    return out
