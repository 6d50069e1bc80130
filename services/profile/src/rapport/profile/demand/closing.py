"""Closing one base bucket: every tracked series' detector is fed the bucket's amount
once (zero when nothing came), and alerts open and close from what they read.

Tracked series: every coarse series seen (category, region, channel, segment, total;
few by nature, capped anyway), and per product metric the products heavy over the
last day, heavy in this bucket (rising), or with an alert open, up to a cap, so the
number of detectors stays bounded whatever the number of products.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any, Protocol

from . import alerts
from .forecast import Forecaster
from .series import PRODUCT_METRICS, Dimension, Metric, SeriesKey, product_item, split_item


class Detector(Protocol):
    def update(self, at: float, value: float) -> alerts.ReadingLike: ...
    def to_state(self) -> dict[str, Any]: ...


@dataclass(frozen=True)
class DetectorKind:
    """How detectors are made and restored (the real one, or a test's)."""

    new: Callable[[float], Detector]
    restore: Callable[[dict[str, Any]], Detector]


def spike_detectors() -> DetectorKind:
    from .detector import DetectorConfig, SpikeDetector

    config = DetectorConfig()
    return DetectorKind(new=lambda step_s: SpikeDetector(step_s=step_s, config=config),
                        restore=SpikeDetector.from_state)


@dataclass(frozen=True)
class ClosePolicy:
    width: int
    top_products: int = 20
    """Products per metric taken from each heavy list (the bucket's, the last day's)."""
    product_slots: int = 50
    """At most this many product detectors per metric."""
    keep_products_s: int = 6 * 3600
    """A product no longer heavy keeps its detector this long (if the cap allows)."""
    max_series: int = 2000
    """At most this many coarse series are detected."""
    forecast_points: int = 36


@dataclass
class Slot:
    """One tracked series: its detector and its forecaster (a state saved before there
    were forecasters gets a fresh one)."""

    detector: Detector
    seen: int
    """Last base bucket the series was heavy (products) or fed."""
    category: str | None = None
    forecaster: Forecaster | None = None

    def to_json(self) -> dict[str, Any]:
        body = {"state": self.detector.to_state(), "seen": self.seen,
                "category": self.category}
        if self.forecaster is not None:
            body["forecast"] = self.forecaster.to_state()
        return body

    @classmethod
    def from_json(cls, body: dict[str, Any], kind: DetectorKind) -> Slot:
        forecast = body.get("forecast")
        return cls(kind.restore(body["state"]), int(body["seen"]), body.get("category"),
                   None if forecast is None else Forecaster.from_state(forecast))


@dataclass
class Tracking:
    """The closer's memory across buckets: detectors and open alerts."""

    slots: dict[str, Slot] = field(default_factory=dict)
    alerts: dict[str, dict[str, Any]] = field(default_factory=dict)
    """Series field -> its open alert."""
    evicted: set[str] = field(default_factory=set)
    ended: dict[str, dict[str, Any]] = field(default_factory=dict)
    """Alert id -> alerts closed since the last commit."""


@dataclass
class BucketDemand:
    """What the closer read of one base bucket."""

    start: int
    coarse: Mapping[str, int]
    """Exact amounts per coarse series field."""
    registry: list[str]
    """Every coarse series field seen so far."""
    bucket_heavy: Mapping[Metric, Mapping[str, int]] = field(default_factory=dict)
    """Metric -> sketch item -> estimated amount in this bucket (its heavy products)."""
    day_heavy: Mapping[Metric, list[str]] = field(default_factory=dict)
    """Metric -> sketch items heavy over the current and previous day."""
    estimate: Callable[[Metric, str], int] = lambda metric, item: 0
    """This bucket's estimate for any item."""


def _feed(tracking: Tracking, series: SeriesKey, slot: Slot, demand: BucketDemand,
          value: float, policy: ClosePolicy) -> list[dict[str, Any]]:
    at, width = demand.start, policy.width
    reading = slot.detector.update(at=at, value=value)
    if slot.forecaster is None:
        slot.forecaster = Forecaster(step_s=width)
    slot.forecaster.update(at, value)
    current = tracking.alerts.get(series.field)
    if reading.alert == "start" and current is None:
        alert = alerts.opened(series, at, width, value, reading,
                              slot.forecaster.forecast(policy.forecast_points), slot.category)
        tracking.alerts[series.field] = alert
        return [alerts.record("started", alert)]
    if current is None:
        return []
    if reading.alert == "end":
        done = alerts.closed(current, series, at, width, value, reading)
        del tracking.alerts[series.field]
        tracking.ended[done["id"]] = done
        return [alerts.record("ended", done)]
    tracking.alerts[series.field] = alerts.refreshed(
        current, series, at, width, value, reading,
        slot.forecaster.forecast(policy.forecast_points))
    return []


def close_bucket(tracking: Tracking, demand: BucketDemand, kind: DetectorKind,
                 policy: ClosePolicy) -> list[dict[str, Any]]:
    """Feed every tracked series this bucket's amount; returns the alert records."""
    records: list[dict[str, Any]] = []
    at = demand.start
    for name in sorted(demand.registry)[:policy.max_series]:
        series = SeriesKey.parse(name)
        slot = tracking.slots.get(name)
        if slot is None:
            slot = tracking.slots[name] = Slot(kind.new(policy.width), at)
        slot.seen = at
        tracking.evicted.discard(name)
        records += _feed(tracking, series, slot, demand, demand.coarse.get(name, 0), policy)
    for metric in PRODUCT_METRICS:
        records += _close_products(tracking, demand, metric, kind, policy)
    return records


def _close_products(tracking: Tracking, demand: BucketDemand, metric: Metric,
                    kind: DetectorKind, policy: ClosePolicy) -> list[dict[str, Any]]:
    at = demand.start
    bucket = demand.bucket_heavy.get(metric, {})
    heavy_items = [*sorted(bucket, key=lambda i: (-bucket[i], i))[:policy.top_products],
                   *demand.day_heavy.get(metric, [])[:policy.top_products]]
    prefix = f"{Dimension.PRODUCT.value}:{metric.value}:"
    heavy: dict[str, str | None] = {}
    for item in heavy_items:
        product_id, category = split_item(item)
        heavy.setdefault(prefix + product_id, category)
    for name, category in heavy.items():
        slot = tracking.slots.get(name)
        if slot is None:
            tracking.slots[name] = Slot(kind.new(policy.width), at, category)
            tracking.evicted.discard(name)
        else:
            slot.seen = at
    mine = sorted((n for n in tracking.slots if n.startswith(prefix)),
                  key=lambda n: (n not in tracking.alerts, n not in heavy,
                                 -tracking.slots[n].seen, n))
    keep = [n for i, n in enumerate(mine)
            if n in tracking.alerts or n in heavy or
            (i < policy.product_slots and at - tracking.slots[n].seen <= policy.keep_products_s)]
    for name in set(mine) - set(keep):
        del tracking.slots[name]
        tracking.evicted.add(name)
    records: list[dict[str, Any]] = []
    for name in keep:
        slot = tracking.slots[name]
        series = SeriesKey.parse(name)
        item = product_item(series.value, slot.category)
        value = bucket[item] if item in bucket else demand.estimate(metric, item)
        records += _feed(tracking, series, slot, demand, value, policy)
    return records
