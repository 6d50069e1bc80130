"""A customer's purchase history as the lifetime-value models need it: by day.

The BTYD models (BG/NBD, Gamma-Gamma) count purchases by distinct days and measure
recency and age in whole days, and a fit "as of" a past moment must see only what was
bought by then. So a profile keeps one entry per purchase day (its UTC day number and
what was spent that day), not only running totals. Pure: no I/O, no clock.

Bounded: past :data:`MAX_DAYS` distinct days the oldest are folded into ``base`` (their
count, first and last day, the first day's value and the total). A summary as of a
moment before the base's last day then counts the whole base, which only a customer
with hundreds of purchase days, asked about long ago, would notice.

Order-independent: entries are a map of day to value, so any arrival order of the same
orders, and merging two histories, give the same history as folding them all in one.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta

from pydantic import BaseModel, ConfigDict, Field

MAX_DAYS = 500
EPOCH = date(1970, 1, 1)
_TINY = timedelta(microseconds=1)


def day_of(at: datetime) -> int:
    """The UTC day number (days since 1970-01-01) of an instant; naive means UTC."""
    if at.tzinfo is not None:
        at = at.astimezone(UTC)
    return (at.date() - EPOCH).days


def day_before(as_of: datetime) -> int:
    """The last day a summary ``as_of`` a moment covers: the day of the instant just
    before it. So "as of the end of 1997-09-30" reads the same whether it is written
    ``1997-09-30T23:59:59Z`` or ``1997-10-01T00:00:00Z``."""
    return day_of(as_of - _TINY)


class PurchaseBase(BaseModel):
    """The oldest purchase days, folded together once the history is over its cap."""

    model_config = ConfigDict(frozen=True)

    days: int
    first_day: int
    last_day: int
    first_value: float
    value: float


class PurchaseHistory(BaseModel):
    days: dict[int, float] = Field(
        default_factory=dict, description="UTC day number -> amount spent that day")
    base: PurchaseBase | None = None

    def add(self, at: datetime, value: float) -> None:
        """One order (in place)."""
        day = day_of(at)
        value = value if math.isfinite(value) else 0.0
        if self.base is not None and day <= self.base.last_day:
            self.base = _widen(self.base, day, value)
            return
        self.days[day] = round(self.days.get(day, 0.0) + value, 2)
        self._cap()

    def merged(self, other: PurchaseHistory) -> PurchaseHistory:
        """Both histories as one person's (what folding both would have given)."""
        out = PurchaseHistory(days=dict(self.days), base=self.base)
        if other.base is not None:
            out.base = other.base if out.base is None else _join(out.base, other.base)
        for day, value in other.days.items():
            out._put(day, value)
        if out.base is not None:  # days now under the base belong to it
            for day in [d for d in out.days if d <= out.base.last_day]:
                out.base = _widen(out.base, day, out.days.pop(day))
        out._cap()
        return out

    def _put(self, day: int, value: float) -> None:
        self.days[day] = round(self.days.get(day, 0.0) + value, 2)

    def _cap(self) -> None:
        if len(self.days) <= MAX_DAYS:
            return
        for day in sorted(self.days)[:len(self.days) - MAX_DAYS]:
            value = self.days.pop(day)
            self.base = (PurchaseBase(days=1, first_day=day, last_day=day, first_value=value,
                                      value=value) if self.base is None
                         else _widen(self.base, day, value))

    def summary(self, as_of: datetime) -> PurchaseSummary | None:
        """What the models read of this history as of a moment; None before any purchase."""
        return summarise(self, day_before(as_of))


def _widen(base: PurchaseBase, day: int, value: float) -> PurchaseBase:
    """The base with one more purchase on ``day`` (a day of its own unless it is the
    base's first or last day: which days inside it were distinct is not kept)."""
    new_day = day < base.first_day or day > base.last_day
    first = day < base.first_day
    return PurchaseBase(
        days=base.days + (1 if new_day else 0), first_day=min(base.first_day, day),
        last_day=max(base.last_day, day),
        first_value=value if first else base.first_value + (value if day == base.first_day
                                                            else 0.0),
        value=round(base.value + value, 2))


def _join(a: PurchaseBase, b: PurchaseBase) -> PurchaseBase:
    first = a if (a.first_day, -a.first_value) <= (b.first_day, -b.first_value) else b
    same_first = a.first_day == b.first_day
    return PurchaseBase(
        days=a.days + b.days - (1 if same_first else 0),  # inner days may repeat: kept
        first_day=first.first_day, last_day=max(a.last_day, b.last_day),
        first_value=(a.first_value + b.first_value) if same_first else first.first_value,
        value=round(a.value + b.value, 2))


@dataclass(frozen=True)
class PurchaseSummary:
    """A customer's purchases up to and including ``as_of_day``, BTYD style.

    ``frequency`` (x) is the number of repeat purchase days, ``recency_weeks`` (t_x) the
    time from the first to the last purchase day and ``age_weeks`` (T) from the first
    purchase day to ``as_of_day``, in whole days divided by 7. ``repeat_value`` is what
    was spent on the repeat days (the first day's purchases are not repeat purchases).
    """

    as_of_day: int
    purchase_days: int
    first_day: int
    last_day: int
    first_value: float
    total_value: float

    @property
    def frequency(self) -> int:
        return self.purchase_days - 1

    @property
    def recency_weeks(self) -> float:
        return (self.last_day - self.first_day) / 7.0

    @property
    def age_weeks(self) -> float:
        return (self.as_of_day - self.first_day) / 7.0

    @property
    def repeat_value(self) -> float:
        return max(0.0, self.total_value - self.first_value)

    @property
    def mean_repeat_value(self) -> float:
        """Mean spend per repeat purchase day (0 without repeats): Gamma-Gamma's m."""
        return self.repeat_value / self.frequency if self.frequency > 0 else 0.0

    @property
    def days_since_last(self) -> int:
        return self.as_of_day - self.last_day


def summarise(history: PurchaseHistory, as_of_day: int) -> PurchaseSummary | None:
    """The summary of the purchase days on or before ``as_of_day``."""
    days = sorted((d, v) for d, v in history.days.items() if d <= as_of_day)
    base = history.base if history.base is not None and \
        history.base.first_day <= as_of_day else None
    if base is None and not days:
        return None
    count = len(days) + (base.days if base else 0)
    if base is not None:
        first_day, first_value = base.first_day, base.first_value
        last_day = max(base.last_day, days[-1][0]) if days else base.last_day
        total = base.value + sum(v for _, v in days)
    else:
        first_day, first_value = days[0]
        last_day = days[-1][0]
        total = sum(v for _, v in days)
    return PurchaseSummary(as_of_day=as_of_day, purchase_days=count, first_day=first_day,
                           last_day=last_day, first_value=first_value,
                           total_value=round(total, 2))


def purchases_between(history: PurchaseHistory, after_day: int, through_day: int) -> int:
    """Purchase days in ``(after_day, through_day]`` among the days kept one by one."""
    return sum(1 for d in history.days if after_day < d <= through_day)
