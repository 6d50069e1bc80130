"""Heavy-hitter sketches of product demand (Apache DataSketches' frequent items).

With millions of products a dictionary per product does not fit; a sketch of
``2**lg_k * 3/4`` counters finds every product above a share of the total, with a
bounded error, whatever the number of products. Sketches merge, so each partition
keeps its own (one writer each) and the closer merges them per bucket, hour and day.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass

from datasketches import frequent_items_error_type, frequent_strings_sketch

from .series import split_item


@dataclass(frozen=True)
class Heavy:
    """A heavy product: its estimated amount and the guaranteed bounds around it."""

    product_id: str
    category: str | None
    estimate: int
    lower: int
    upper: int

    def to_json(self) -> dict[str, object]:
        return {"product_id": self.product_id, "category": self.category,
                "estimate": self.estimate, "lower_bound": self.lower,
                "upper_bound": self.upper}


def load(raw: bytes | None, lg_k: int) -> frequent_strings_sketch:
    return frequent_strings_sketch(lg_k) if raw is None else \
        frequent_strings_sketch.deserialize(raw)


def updated(raw: bytes | None, amounts: Mapping[str, int], lg_k: int) -> bytes:
    """The serialized sketch ``raw`` after adding ``amounts`` (item -> positive amount)."""
    sketch = load(raw, lg_k)
    for item in sorted(amounts):
        if amounts[item] > 0:
            sketch.update(item, amounts[item])
    return sketch.serialize()


def merged(raws: Iterable[bytes | None], lg_k: int) -> frequent_strings_sketch:
    out = frequent_strings_sketch(lg_k)
    for raw in raws:
        if raw is not None:
            out.merge(frequent_strings_sketch.deserialize(raw))
    return out


def top(sketch: frequent_strings_sketch, n: int) -> list[Heavy]:
    """The ``n`` products with the largest estimates (ties by item, so it is stable)."""
    if sketch.is_empty():
        return []
    rows = sketch.get_frequent_items(frequent_items_error_type.NO_FALSE_NEGATIVES)
    rows.sort(key=lambda r: (-r[1], r[0]))
    out = []
    for item, estimate, lower, upper in rows[:n]:
        product_id, category = split_item(item)
        out.append(Heavy(product_id, category, int(estimate), int(lower), int(upper)))
    return out


def items(sketch: frequent_strings_sketch, n: int) -> dict[str, int]:
    """The top ``n`` items (raw) with their estimates."""
    if sketch.is_empty():
        return {}
    rows = sketch.get_frequent_items(frequent_items_error_type.NO_FALSE_NEGATIVES)
    rows.sort(key=lambda r: (-r[1], r[0]))
    return {item: int(estimate) for item, estimate, _, _ in rows[:n]}
