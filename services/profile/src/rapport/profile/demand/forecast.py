"""Forecasts of one demand series, for the next hour and the next day, with intervals.

The model is additive: a slow **level**, a **daily pattern** at the series' own
resolution and a **weekly pattern** by hour of the week (the weekday's deviation from
the daily one, so a week costs 168 numbers, not a week of buckets), plus what is left:
the **residual**, which tends to persist (a busy afternoon stays busy for a while).
The residual's persistence is its lag-one autocorrelation, learnt per series, so the
latest residual fades from the forecast as the horizon grows; beyond an hour or so
only the level and the patterns remain.

Intervals are learnt, not assumed: for a few horizons (1, 2, 4 ... 64 points, and
"far", where the residual has faded) the forecaster checks, at every point, what it
would have forecast that many points ago and tracks the 10 % and 90 % quantiles of its
errors (in units of the series' usual residual, so they carry from quiet to busy
series). It keeps score of itself the same way, against the seasonal-naive forecast
(the value one day earlier), so the live system can say how good its forecasts are.

Constant memory per series: the two patterns, the last 64 residuals, the last day of
values (for the naive forecast) and a few dozen numbers.
"""

from __future__ import annotations

import base64
import math
from dataclasses import dataclass, field, fields
from typing import Any

import numpy as np

from .forecast_errors import HorizonErrors, Quality

HORIZONS = (1, 2, 4, 8, 16, 32, 64)
"""Horizons (in points) whose errors are tracked; "far" (any longer) comes after them."""
_RING = HORIZONS[-1]
_HOUR, _DAY, _WEEK = 3600, 86400, 7 * 86400


@dataclass(frozen=True)
class ForecastConfig:
    level_alpha: float = 0.02        # how fast the level follows what the patterns leave
    day_gamma: float = 0.15          # weight of the newest day in the daily pattern
    week_delta: float = 0.3          # weight of the newest week in the weekly pattern
    memory_alpha: float = 0.01       # how fast the residual's persistence and size move
    quantile_rate: float = 0.005     # the intervals' learning rate, once settled
    robust: float = 3.0              # learn from at most this many usual residuals off ...
    shift_points: int = 12           # ... unless the points before were as far off
    blend_alpha: float = 0.02        # how fast the model's and the naive's errors move
    far_every_s: int = 900           # a far forecast is checked against its outcome this often
    coverage: float = 0.8            # central share of outcomes an interval should hold
    max_slots: int = 2016            # longest daily pattern kept (a day of 43 s buckets)


@dataclass(frozen=True)
class ForecastPoint:
    at: float                        # epoch second the point's bucket starts
    expected: float
    lower: float
    upper: float


def _pack(values: list[float | None]) -> str:
    return base64.b64encode(np.array([math.nan if v is None else v for v in values],
                                     dtype="<f8").tobytes()).decode()


def _unpack(text: str) -> list[float | None]:
    raw = np.frombuffer(base64.b64decode(text), dtype="<f8")
    return [None if math.isnan(v) else v for v in raw.tolist()]


_PACKED = ("day", "week", "ring", "recent")


@dataclass
class Forecaster:
    """Constant memory and work per point; ``step_s`` is the series' bucket width."""

    step_s: float
    config: ForecastConfig = field(default_factory=ForecastConfig)
    n: int = 0
    last_slot: int | None = None
    level: float = 0.0
    residual: float = 0.0
    lag_product: float = 0.0          # running mean of residual x previous residual
    lag_square: float = 0.0           # running mean of squared residuals
    scale: float = 0.0                # running mean absolute residual (robust)
    spread: float = 0.0               # the same, bursts and all (the intervals' unit)
    day: list[float | None] = field(default_factory=list)
    week: list[float | None] = field(default_factory=list)
    ring: list[float | None] = field(default_factory=list)     # last residuals, oldest first
    recent: list[float | None] = field(default_factory=list)   # last day of values
    naive_mae: float = 0.0            # running mean |error| of the seasonal naive
    zeros: int = 0                    # points that were exactly 0 (intermittent demand)
    errors: list[HorizonErrors] = field(default_factory=list)  # per HORIZONS, then far
    pending: list[tuple[int, float, float | None, float]] = field(default_factory=list)
    """Far forecasts awaiting their outcome: (slot, model, naive, scale), one per hour."""

    def __post_init__(self) -> None:
        per_day = round(_DAY / self.step_s) if self.step_s > 0 else 0
        if not self.day and 2 <= per_day <= self.config.max_slots:
            self.day = [None] * per_day
        week_res = max(self.step_s, _HOUR)
        if not self.week and round(_WEEK / week_res) >= 2:
            self.week = [None] * round(_WEEK / week_res)
        if not self.recent:
            self.recent = [None] * (len(self.day) or len(self.week) or 1)
        if not self.ring:
            self.ring = [None] * _RING
        self.pending = [(int(s), m, n, sc) for s, m, n, sc in self.pending]  # JSON: lists
        self.errors = [e if isinstance(e, HorizonErrors) else HorizonErrors(**e)
                       for e in self.errors] or [HorizonErrors() for _ in range(len(HORIZONS) + 1)]

    # -- the model ------------------------------------------------------------------

    def _patterns(self, slot: int) -> tuple[float, float]:
        day = self.day[slot % len(self.day)] if self.day else None
        week = None
        if self.week:
            per_week_slot = max(self.step_s, _HOUR) / self.step_s
            week = self.week[int(slot // per_week_slot) % len(self.week)]
        return day or 0.0, week or 0.0

    def _base(self, slot: int) -> float:
        day, week = self._patterns(slot)
        return self.level + day + week

    @property
    def persistence(self) -> float:
        """Lag-one autocorrelation of the residual, in [0, 0.98]."""
        if self.lag_square <= 0:
            return 0.0
        return max(0.0, min(0.98, self.lag_product / self.lag_square))

    def _bin(self, h: int) -> int:
        for k, horizon in enumerate(HORIZONS):
            if h < horizon * 2 and h >= horizon:
                return k
        return len(HORIZONS)

    def _model(self, base: float, residual: float, h: int, k: int, scale: float) -> float:
        """The model's forecast: patterns, the residual faded, its median bias."""
        return base + residual * self.persistence ** h + self.errors[k].middle * scale

    def _scale(self) -> float:
        return self.scale + 1e-9 * (abs(self.level) + 1.0)

    def _units(self) -> float:
        """What errors are measured in for the intervals: the usual residual, bursts
        and all (a sparse series' rare sales are its errors, not outliers to ignore: in
        the robust scale they would shrink the unit until every sale is 100 units off)."""
        return self.spread + 1e-9 * (abs(self.level) + 1.0)

    # -- learning one point ------------------------------------------------------------

    def update(self, at: float, value: float) -> None:
        """Learn the point at epoch second ``at`` (gaps of whole steps are allowed)."""
        value = float(value)
        slot = round(at / self.step_s)
        if self.last_slot is not None:
            if slot <= self.last_slot:
                slot = self.last_slot + 1
            for _ in range(min(slot - self.last_slot - 1, len(self.recent))):
                self._push(None, None)
        self.last_slot = slot
        if value == 0.0:
            self.zeros += 1
        if self.n == 0:
            self.level = value
        base = self._base(slot)
        if self.n:
            self._check(value, base)
        residual = value - base
        a = self.config.memory_alpha
        bound = self.config.robust * self._scale() if self.n > 10 else math.inf
        previous = self.ring[-1]
        clipped = max(-bound, min(bound, residual))
        if all(r is not None and abs(r) > bound and r * residual > 0
               for r in self.ring[-self.config.shift_points:]):
            clipped = residual    # far off for a while: a shift to learn, not an outlier
        if previous is not None:
            self.lag_product += a * (residual * previous - self.lag_product)
            self.lag_square += a * (residual * residual - self.lag_square)
        self._learn(slot, base + clipped)
        self.scale = abs(residual) if self.n == 1 else self.scale + a * (
            min(abs(residual), 2 * bound) - self.scale)
        self.spread = abs(residual) if self.n == 1 else self.spread + a * (
            abs(residual) - self.spread)
        self.residual = value - self._base(slot)
        self._push(residual, value)
        self.n += 1
        if slot % self.points_per(self.config.far_every_s) == 0:
            self._remember_far()

    def _check(self, value: float, base: float) -> None:
        """What the forecasts made 1, 2, 4 ... points ago (and half a day ago, "far")
        would have missed by: learnt into the blend, the median bias and the interval
        quantiles, and kept as the running score."""
        scale = self._units()
        naive = self.recent[0]
        if naive is not None:
            self.naive_mae += self.config.blend_alpha * (abs(value - naive) - self.naive_mae)
        for k, h in enumerate(HORIZONS):
            past = self.ring[-h]
            if past is not None:
                self._score(k, value, self._model(base, past, h, k, scale), naive, scale)
        while self.pending and self.pending[0][0] < self.last_slot:   # lost in a gap
            self.pending.pop(0)
        if self.pending and self.pending[0][0] == self.last_slot:
            _, model, naive_then, scale_then = self.pending.pop(0)
            self._score(len(HORIZONS), value, model, naive_then, scale_then)

    def _score(self, k: int, value: float, model: float, naive: float | None,
               scale: float) -> None:
        c = self.config
        errors = self.errors[k]
        if naive is None:   # the first day: errors before there is a daily pattern teach
            return          # intervals too wide to unlearn (they shrink 9x slower)
        errors.learn(value, model, errors.blend(model, naive, self.naive_mae), naive, scale,
                     coverage=c.coverage, rate=c.quantile_rate, blend_alpha=c.blend_alpha)

    def _remember_far(self) -> None:
        """Every ``far_every_s``, the forecast half a day ahead is kept until its outcome:
        it stands for every far one (a series with a day of fewer than 256 points
        has none: its day ahead is a tracked horizon)."""
        assert self.last_slot is not None
        h = len(self.recent) // 2
        if h < HORIZONS[-1] * 2:
            return
        k = len(HORIZONS)
        scale = self._units()
        model = self._model(self._base(self.last_slot + h), 0.0, h, k, scale)
        naive = self.recent[h - 1] if h <= len(self.recent) else None
        self.pending.append((self.last_slot + h, model, naive, scale))

    def _learn(self, slot: int, value: float) -> None:
        c = self.config
        day, week = self._patterns(slot)
        self.level += c.level_alpha * (value - day - week - self.level)
        if self.day:
            i = slot % len(self.day)
            old = self.day[i]
            target = value - self.level - week
            self.day[i] = target if old is None else old + c.day_gamma * (target - old)
        if self.week:
            per_week_slot = max(self.step_s, _HOUR) / self.step_s
            j = int(slot // per_week_slot) % len(self.week)
            old = self.week[j]
            daily = self.day[slot % len(self.day)] if self.day else None
            target = value - self.level - (daily or 0.0)
            if self.day:   # the weekly part only learns once the daily one is known
                if self.n >= len(self.day):
                    rate = c.week_delta / per_week_slot
                    self.week[j] = 0.0 if old is None else old + rate * (target - old)
            else:
                self.week[j] = target if old is None else old + c.day_gamma * (target - old)

    def _push(self, residual: float | None, value: float | None) -> None:
        self.ring.append(residual)
        del self.ring[0]
        self.recent.append(value)
        del self.recent[0]

    # -- reading -----------------------------------------------------------------------

    def forecast(self, horizon: int) -> list[ForecastPoint]:
        """The next ``horizon`` points, each with its central ``coverage`` interval."""
        if self.last_slot is None:
            return []
        scale = self._units()
        season = len(self.recent)
        out = []
        for h in range(1, horizon + 1):
            slot = self.last_slot + h
            k = self._bin(h)
            naive = self.recent[h - 1] if h <= season else None
            errors = self.errors[k]
            model = self._model(self._base(slot), self.residual, h, k, scale)
            expected = errors.blend(model, naive, self.naive_mae)
            out.append(ForecastPoint(slot * self.step_s, expected,
                                     expected + errors.lower * scale,
                                     expected + errors.upper * scale))
        return out

    def points_per(self, seconds: int) -> int:
        return max(1, round(seconds / self.step_s))

    @property
    def zero_share(self) -> float:
        """Share of the points that were 0. Where it is large no interval holds just 80 %
        of the outcomes: one that holds 0 holds them all whenever demand is 0."""
        return self.zeros / self.n if self.n else 0.0

    def quality(self) -> list[Quality]:
        """The running score of the forecasts an hour ahead and a day ahead ("far")."""
        return [self.errors[self._bin(self.points_per(_HOUR))].quality("next_hour"),
                self.errors[self._bin(len(self.recent))].quality("next_day")]

    # -- state -------------------------------------------------------------------------

    def to_state(self) -> dict[str, Any]:
        state = {f.name: getattr(self, f.name) for f in fields(self) if f.name != "config"}
        for name in _PACKED:
            state[name] = _pack(state[name])
        state["errors"] = [e.to_json() for e in self.errors]
        return state

    @classmethod
    def from_state(cls, state: dict[str, Any],
                   config: ForecastConfig | None = None) -> Forecaster:
        known = {f.name for f in fields(cls)} - {"config"}
        values = {k: v for k, v in state.items() if k in known}
        for name in _PACKED:
            values[name] = _unpack(state[name])
        return cls(config=config or ForecastConfig(), **values)
