"""Event time for demand: tumbling buckets, their rollups, watermarks and the late rule.

Each partition of the re-keyed stream keeps a clock per upstream partition feeding it
(:func:`source_key`), the latest event time it has folded from there; its watermark is
that minus the allowed lateness. An event is folded into
its bucket unless the bucket already ended before its partition's watermark, or the
closer already closed it: then it is late, counted as such, and never added (so a
closed bucket, which detectors were fed once, never changes). The closer closes a
bucket once the global watermark (the slowest partition still receiving data) passed
its end (the slowest clock, so one source running ahead closes nothing early).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

HOUR = 3600
DAY = 86400
CLOCK_SKEW_S = 60.0
"""How far past its receipt an event's time may move its partition's clock: one event
from a device with a wrong clock must not make everything after it late."""


def label(width: int) -> str:
    """A bucket width as readers name it: ``5m``, ``1h``, ``1d``, ``30s``."""
    for unit, seconds in (("d", DAY), ("h", HOUR), ("m", 60)):
        if width % seconds == 0:
            return f"{width // seconds}{unit}"
    return f"{width}s"


@dataclass(frozen=True)
class Buckets:
    """The base bucket width and the coarser widths it rolls up to."""

    base: int = 300
    rollups: tuple[int, ...] = (HOUR, DAY)

    def __post_init__(self) -> None:
        if self.base <= 0 or any(w % self.base or w <= self.base for w in self.rollups):
            raise ValueError("every rollup width must be a multiple of the base width")
        if DAY % self.base:
            raise ValueError("the base width must divide a day")

    @property
    def widths(self) -> tuple[int, ...]:
        return (self.base, *self.rollups)

    def by_label(self) -> dict[str, int]:
        return {label(w): w for w in self.widths}

    def start(self, at: float, width: int | None = None) -> int:
        """The start (epoch seconds) of the bucket holding ``at``."""
        width = width or self.base
        return int(at // width) * width

    def containing(self, base_start: int) -> list[tuple[int, int]]:
        """(width, start) of the base bucket and every rollup bucket containing it."""
        return [(w, self.start(base_start, w)) for w in self.widths]

    def is_last_in(self, base_start: int, width: int) -> bool:
        """Whether this base bucket is the last one of its ``width`` bucket."""
        return (base_start + self.base) % width == 0


SOURCE_SEP = "<"


def source_key(member: str, origin: object | None) -> str:
    """The clock of what partition ``member`` received from upstream partition ``origin``.

    A re-keyed partition is fed by every upstream partition, interleaved as their
    batches land, so its records are not in event-time order; those from one upstream
    partition are (in that partition's order). So a clock is kept per pair, and the late
    rule and the watermark read those. Without an origin, the partition's own clock."""
    return member if origin is None or origin == "" else f"{member}{SOURCE_SEP}{origin}"


def member_of(key: str) -> str:
    """The partition a clock key belongs to."""
    return key.split(SOURCE_SEP, 1)[0]


def watermark(clock: float | None, lateness_s: float) -> float | None:
    return None if clock is None else clock - lateness_s


def advance(clock: float | None, event_s: float, received_s: float) -> float:
    """A partition's clock after an event: event time moves it, bounded by the receipt."""
    at = min(event_s, received_s + CLOCK_SKEW_S)
    return at if clock is None else max(clock, at)


def is_late(bucket_start: int, width: int, watermark_s: float | None,
            closed_through: int | None) -> bool:
    """Whether an event of this base bucket may no longer be counted in it."""
    if closed_through is not None and bucket_start <= closed_through:
        return True
    return watermark_s is not None and bucket_start + width <= watermark_s


def global_watermark(clocks: Mapping[str, float], last_active: Mapping[str, float], *,
                     now: float, idle_s: float, lateness_s: float) -> float | None:
    """The slowest clock among partitions that received data within ``idle_s`` (wall
    seconds), minus the lateness; when all went quiet, the latest clock (nothing more is
    coming, so what was seen can close)."""
    if not clocks:
        return None
    live = [c for member, c in clocks.items() if now - last_active.get(member, 0.0) <= idle_s]
    return (min(live) if live else max(clocks.values())) - lateness_s


def closing_plan(closed_through: int | None, first_bucket: int | None,
                 watermark_s: float | None, *, width: int, backfill_s: float,
                 limit: int) -> list[int]:
    """The base buckets to close next, oldest first: those after the last closed one
    that ended before the watermark. A gap longer than ``backfill_s`` (a first start, a
    long outage) is skipped rather than fed bucket by bucket."""
    if watermark_s is None:
        return []
    start = closed_through + width if closed_through is not None else first_bucket
    if start is None:
        return []
    floor = int((watermark_s - backfill_s) // width) * width
    start = max(start, floor)
    plan: list[int] = []
    while start + width <= watermark_s and len(plan) < limit:
        plan.append(start)
        start += width
    return plan
