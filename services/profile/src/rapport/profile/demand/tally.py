"""A batch of demand facts, as effects for one transaction of the ``{demand}`` slot.

Events are judged against their partition's clock as it advances record by record, so
the late rule gives the same verdicts however a partition's records are split into
batches; the totals are integer sums, so their order does not matter either.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field

from . import clock
from .clock import Buckets
from .series import Contribution, Dimension, Metric


@dataclass
class DemandEffects:
    """What one batch of facts writes for demand (all in one MULTI)."""

    counts: dict[tuple[int, int], dict[str, int]] = field(default_factory=dict)
    """(width, bucket start) -> series field -> amount to add."""
    products: dict[tuple[int, str], dict[str, int]] = field(default_factory=dict)
    """(base bucket start, partition member:metric) -> sketch item -> amount."""
    sketches: dict[tuple[int, str], bytes] = field(default_factory=dict)
    """(base bucket start, partition member:metric) -> the sketch after this batch."""
    clocks: dict[str, float] = field(default_factory=dict)
    """Clock key (:func:`.clock.source_key`) -> its latest event time."""
    first: dict[str, int] = field(default_factory=dict)
    """Partition member -> earliest base bucket it counted (where closing starts)."""
    active: dict[str, float] = field(default_factory=dict)
    """Clock key -> wall time it last received data (idle partitions)."""
    series: set[str] = field(default_factory=set)
    late: dict[str, int] = field(default_factory=dict)
    """``events`` and the amount per metric that came too late to be counted."""
    counted: int = 0
    audience_add: dict[str, dict[str, float]] = field(default_factory=dict)
    """Category -> customer id -> affinity rank score."""
    audience_remove: dict[str, set[str]] = field(default_factory=dict)
    reach_add: dict[str, dict[str, float]] = field(default_factory=dict)
    """Reach set name -> customer id -> response score (:mod:`.reach`)."""
    reach_remove: dict[str, set[str]] = field(default_factory=dict)

    @property
    def late_events(self) -> int:
        return self.late.get("events", 0)


class Tally:
    """Folds a batch's contributions into :class:`DemandEffects`."""

    def __init__(self, buckets: Buckets, *, lateness_s: float,
                 clocks: Mapping[str, float | None], closed_through: int | None,
                 wall_now: float) -> None:
        self._buckets = buckets
        self._lateness = lateness_s
        self._clocks = dict(clocks)
        self._closed = closed_through
        self._wall = wall_now
        self.fx = DemandEffects()

    def add(self, member: str, event_s: float, received_s: float,
            contribution: Contribution, source: str = "") -> bool:
        """Count one event from partition ``member`` (that came from upstream partition
        ``source``); False when it came too late."""
        fx = self.fx
        key = clock.source_key(member, source)
        current = self._clocks.get(key)
        fx.active[key] = self._wall
        base = self._buckets.start(event_s)
        late = clock.is_late(base, self._buckets.base,
                             clock.watermark(current, self._lateness), self._closed)
        self._clocks[key] = fx.clocks[key] = clock.advance(current, event_s, received_s)
        if not contribution:
            return True
        if late:
            fx.late["events"] = fx.late.get("events", 0) + 1
            for key, amount in contribution.series.items():
                if key.dimension is Dimension.TOTAL:
                    fx.late[key.metric.value] = fx.late.get(key.metric.value, 0) + amount
            return False
        fx.counted += 1
        for width, start in self._buckets.containing(base):
            counts = fx.counts.setdefault((width, start), {})
            for key, amount in contribution.series.items():
                counts[key.field] = counts.get(key.field, 0) + amount
        fx.series.update(key.field for key in contribution.series)
        for (metric, item), amount in contribution.products.items():
            items = fx.products.setdefault((base, sketch_field(member, metric)), {})
            items[item] = items.get(item, 0) + amount
        fx.first[member] = min(base, fx.first.get(member, base))
        return True


def sketch_field(member: str, metric: Metric) -> str:
    """The field of a partition's sketch of one metric in a bucket's sketch hash."""
    return f"{member}|{metric.value}"


def field_metric(field_name: str) -> Metric:
    return Metric(field_name.rsplit("|", 1)[1])
