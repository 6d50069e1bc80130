"""What one touchpoint contributes to demand: metrics, dimensions and series ids.

Every amount is an integer (revenue in cents), so bucket totals are exact sums and any
order or split of the same events gives the same totals. Products are not counted
exactly (there may be millions): their amounts go to heavy-hitter sketches, as items
that carry the product's category so a product spike can find its audience.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any

from rapport.shared.events import MessageType, Touchpoint

from ..domain import money, number


class Metric(StrEnum):
    VIEWS = "views"
    SEARCHES = "searches"
    ADD_TO_CARTS = "add_to_carts"
    ORDERS = "orders"
    UNITS = "units"
    REVENUE = "revenue"
    """Counted in cents; presented in currency units (:func:`present`)."""


class Dimension(StrEnum):
    TOTAL = "total"
    PRODUCT = "product"
    CATEGORY = "category"
    REGION = "region"
    CHANNEL = "channel"
    SEGMENT = "segment"


PRODUCT_METRICS: tuple[Metric, ...] = (Metric.VIEWS, Metric.ADD_TO_CARTS, Metric.ORDERS,
                                       Metric.UNITS, Metric.REVENUE)
"""What products are tracked by (a search names no product)."""
TOTAL = "all"
"""The one value of the ``total`` dimension."""
UNKNOWN_REGION = "unknown"
MAX_VALUE_LENGTH = 200
_ITEM_SEP = "\x1f"


@dataclass(frozen=True, order=True)
class SeriesKey:
    """One demand series: a metric of one value of one dimension."""

    dimension: Dimension
    value: str
    metric: Metric

    @property
    def field(self) -> str:
        """Its name in Redis (bucket hash field, detector state, registry)."""
        return f"{self.dimension.value}:{self.metric.value}:{self.value}"

    @classmethod
    def parse(cls, raw: str | bytes) -> SeriesKey:
        text = raw.decode() if isinstance(raw, bytes) else raw
        dimension, metric, value = text.split(":", 2)
        return cls(Dimension(dimension), value, Metric(metric))

    def to_json(self) -> dict[str, str]:
        return {"dimension": self.dimension.value, "value": self.value,
                "metric": self.metric.value}


def present(metric: Metric, amount: float) -> float:
    """An amount as readers see it: revenue in currency units, the rest as counted."""
    return round(amount / 100, 2) if metric is Metric.REVENUE else round(amount, 4)


def clean(value: Any) -> str | None:
    """A dimension value from an event property: a non-empty string (numbers allowed for
    product ids), bounded in length; anything else is no value."""
    if isinstance(value, bool):
        return None
    if isinstance(value, int):
        value = str(value)
    if not isinstance(value, str) or not value.strip():
        return None
    return value[:MAX_VALUE_LENGTH]


def product_item(product_id: str, category: str | None) -> str:
    """The sketch item of a product: its id and, when known, its category."""
    return product_id if category is None else f"{product_id}{_ITEM_SEP}{category}"


def split_item(item: str) -> tuple[str, str | None]:
    product_id, _, category = item.partition(_ITEM_SEP)
    return product_id, category or None


def region_of(tp: Touchpoint, traits: dict[str, Any] | None = None) -> str:
    """Where the demand comes from: the event's location, else the person's region trait,
    else the event's country."""
    location = tp.context.get("location")
    location = location if isinstance(location, dict) else {}
    for candidate in (location.get("region"), tp.traits.get("region"),
                      (traits or {}).get("region"), location.get("country")):
        found = clean(candidate)
        if found:
            return found
    return UNKNOWN_REGION


@dataclass
class Contribution:
    """What one touchpoint adds: exact amounts per series, and product amounts per
    (metric, sketch item)."""

    series: dict[SeriesKey, int] = field(default_factory=dict)
    products: dict[tuple[Metric, str], int] = field(default_factory=dict)

    def add(self, key: SeriesKey, amount: int) -> None:
        if amount:
            self.series[key] = self.series.get(key, 0) + amount

    def add_product(self, metric: Metric, item: str, amount: int) -> None:
        if amount:
            self.products[(metric, item)] = self.products.get((metric, item), 0) + amount

    def __bool__(self) -> bool:
        return bool(self.series or self.products)


@dataclass(frozen=True)
class _Line:
    product_id: str | None
    category: str | None
    quantity: int
    cents: int


def _cents(value: Any) -> int:
    return max(0, round(money(value) * 100))


def _line(raw: dict[str, Any], default_price: Any = None) -> _Line:
    quantity = max(0, int(number(raw.get("quantity", 1)) or 1))
    price = raw.get("price", default_price)
    return _Line(clean(raw.get("product_id")), clean(raw.get("category")), quantity,
                 max(0, round(money(number(price) * quantity) * 100)))


_EVENT_METRIC = {"Product Viewed": Metric.VIEWS, "Product Added": Metric.ADD_TO_CARTS,
                 "Products Searched": Metric.SEARCHES}


DEMAND_PROPERTIES = ("category", "product_id", "products", "revenue", "total", "price",
                     "quantity")
"""The properties a commerce event's demand is read from (all :func:`contribution_of`
reads)."""


def is_commerce(tp: Touchpoint) -> bool:
    """Whether a touchpoint adds demand (the others only move their partition's clock)."""
    return tp.type is MessageType.TRACK and (tp.event in _EVENT_METRIC
                                             or tp.event == "Order Completed")


def contribution(tp: Touchpoint, *, region: str, segments: Iterable[str]) -> Contribution:
    """The demand of one touchpoint (empty for anything but commerce track events)."""
    if not is_commerce(tp):
        return Contribution()
    return contribution_of(tp.event or "", tp.channel.value, tp.properties, region=region,
                           segments=segments)


def contribution_of(event: str, channel: str, props: dict[str, Any], *, region: str,
                    segments: Iterable[str]) -> Contribution:
    """The demand of a commerce track event from what it is made of."""
    out = Contribution()
    context = [(Dimension.TOTAL, TOTAL), (Dimension.REGION, region),
               (Dimension.CHANNEL, channel),
               *((Dimension.SEGMENT, s) for s in sorted(set(segments)))]
    metric = _EVENT_METRIC.get(event)
    if metric is not None:
        category, product_id = clean(props.get("category")), clean(props.get("product_id"))
        for dimension, value in context:
            out.add(SeriesKey(dimension, value, metric), 1)
        if category is not None:
            out.add(SeriesKey(Dimension.CATEGORY, category, metric), 1)
        if product_id is not None and metric in PRODUCT_METRICS:
            out.add_product(metric, product_item(product_id, category), 1)
    elif event == "Order Completed":
        _order(out, props, context)
    return out


def _order(out: Contribution, props: dict[str, Any],
           context: list[tuple[Dimension, str]]) -> None:
    products = props.get("products")
    if isinstance(products, list):
        lines = [_line(p) for p in products if isinstance(p, dict)]
    elif "product_id" in props or "category" in props:  # a one-line order without a list
        lines = [_line(props, props.get("revenue", props.get("total")))]
    else:
        lines = []
    units = sum(line.quantity for line in lines)
    revenue = _cents(props.get("revenue", props.get("total")))
    for dimension, value in context:
        out.add(SeriesKey(dimension, value, Metric.ORDERS), 1)
        out.add(SeriesKey(dimension, value, Metric.UNITS), units)
        out.add(SeriesKey(dimension, value, Metric.REVENUE), revenue)
    for category in sorted({line.category for line in lines if line.category is not None}):
        out.add(SeriesKey(Dimension.CATEGORY, category, Metric.ORDERS), 1)
    for line in lines:
        if line.category is not None:
            out.add(SeriesKey(Dimension.CATEGORY, line.category, Metric.UNITS), line.quantity)
            out.add(SeriesKey(Dimension.CATEGORY, line.category, Metric.REVENUE), line.cents)
    items = {product_item(line.product_id, line.category): line for line in lines
             if line.product_id is not None}
    for line in lines:
        if line.product_id is not None:
            item = product_item(line.product_id, line.category)
            out.add_product(Metric.UNITS, item, line.quantity)
            out.add_product(Metric.REVENUE, item, line.cents)
    for item in sorted(items):
        out.add_product(Metric.ORDERS, item, 1)
