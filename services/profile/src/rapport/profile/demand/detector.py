"""Streaming spike and shift detector for one demand series.

One point at a time, constant work and memory per series, two views of the series:

* **Prediction error.** Three predictors of the next point compete: the recent level
  (EWMA), the same time yesterday (a daily profile) and the same time last week (a weekly
  profile). Each keeps the running size of its own errors; the point's *surprise* is its
  distance from the prediction of the predictor that has lately been most accurate, in
  units of that predictor's usual error. So a series that follows its daily pattern is
  judged against the pattern, one without a pattern against its level. Surprises become a
  score through their own running distribution (a short average against the long one, as
  Numenta's anomaly likelihood does), so one threshold suits every series.
* **Shape novelty.** The recent shape of the series (block means over the last few hours,
  in shares of the range learnt while warming up) is compared with a bounded memory of
  prototype shapes (adaptive-resonance style): a shape unlike any seen before is novel and
  is remembered; a known one refines its prototype. Slow drifts and changed patterns that
  no single point betrays show up here. Where new shapes keep coming they weigh less.

The point's score is the stronger of the two, 0.5 meaning "a detection". After a
detection, weaker ones are damped for a while, so a spike or a shift is reported once, at
its start. That score is what NAB judges (``rapport eval-spikes``).

Stream alerts ask a plainer question of the same state, one ops can act on: is demand far
from what it usually is now (the time of day's profile where the series has one, else its
slow mean), by many of its usual deviations and by a share worth acting on? One point far
off opens an alert, a moderate change must hold for two; the alert closes when demand is
back near that baseline (or after a day: then it was a shift, and the baselines learn it).
"""

from __future__ import annotations

import base64
import math
import struct
from dataclasses import dataclass, field, fields
from typing import Any, Literal

import numpy as np

Direction = Literal["up", "down"]


@dataclass(frozen=True)
class DetectorConfig:
    """One configuration for every series (tuned on NAB's development set, never per file)."""

    # Prediction error
    level_alpha: float = 0.8          # EWMA of the level predictor
    season_alpha: float = 0.1         # weight of the newest day/week in the profiles
    error_alpha: float = 0.01         # how fast the predictors' error sizes move
    scale_alpha: float = 0.005        # the series' overall spread (floors the error size)
    scale_floor: float = 0.4          # share of that spread an error size never goes under
    clip: float = 1000.0              # learn from at most this many error sizes off
    season_clip: float = 5.0          # the same for the seasonal profiles
    short_alpha: float = 0.5          # short average of surprises
    long_alpha: float = 0.005         # long distribution of surprises
    suppress_points: int = 200        # how long a peak of that score damps lower ones
    damp: float = 0.0                 # factor on those lower scores
    error_level: float = 0.85         # prediction-error score that is a detection
    # Shape novelty
    shape_block: int = 8              # points averaged into one step of a shape
    shape_width: int = 8              # steps in a shape (block * width points of context)
    shape_vigilance: float = 0.15     # distance (share of the learnt range) that is new
    shape_rate: float = 0.1           # how far a matched prototype moves to the shape
    shape_memory: int = 256           # prototypes kept (least recently matched go first)
    shape_rest: int = 300             # a new shape scores at most once in this many points
    novelty_penalty: float = 0.1      # new shapes weigh less where they keep coming ...
    novelty_half_life: float = 3000.0  # ... counted over about this many points
    range_points: int = 750           # the range shapes are measured in is learnt this long
    # Both
    rest_points: int = 600            # after a detection, weaker ones are damped this long
    warmup_points: int = 150          # no score before this many points
    max_slots: int = 2016             # longest seasonal profile kept (a week of 5 min)
    # Stream alerts
    alert_z: float = 4.5              # an alert opens this many usual deviations off ...
    alert_magnitude: float = 0.2      # ... and this far off (share of the baseline)
    alert_max_points: int = 288       # an alert still open this long is a shift: it ends


@dataclass(frozen=True)
class Reading:
    """What the detector made of one point."""

    score: float                      # anomaly score in [0, 1] (NAB's anomaly_score)
    expected: float                   # baseline the point was judged against
    direction: Direction | None       # "up"/"down" while an alert is open, else None
    alert: Literal["start", "end"] | None = None   # an alert opens / closes at this point
    magnitude: float = 0.0            # (value - expected) / |expected|, signed


_F32 = struct.Struct("<f")


def _f32(x: float) -> float:
    """Seasonal profiles hold single-precision values: half the state, restored exactly."""
    return _F32.unpack(_F32.pack(x))[0]


def _pack(values: list[float | None]) -> str:
    return base64.b64encode(np.array([math.nan if v is None else v for v in values],
                                     dtype="<f4").tobytes()).decode()


def _unpack(text: str) -> list[float | None]:
    raw = np.frombuffer(base64.b64decode(text), dtype="<f4")
    return [None if math.isnan(v) else v for v in raw.tolist()]


def _phi(z: float) -> float:
    return 0.5 * math.erfc(-z / math.sqrt(2.0))


def _likelihood_score(short: float, mean: float, var: float) -> float:
    """Numenta's log-scaled anomaly likelihood of a short average of surprises."""
    likelihood = _phi((short - mean) / (math.sqrt(var) + 1e-6))
    return max(0.0, min(1.0, math.log(1.0000000001 - likelihood) / math.log(1e-10)))


@dataclass
class SpikeDetector:
    """Constant memory and work per point; ``step_s`` is the series' bucket width in seconds."""

    step_s: float
    config: DetectorConfig = field(default_factory=DetectorConfig)
    n: int = 0
    last_slot: int | None = None
    # prediction error
    level: float = 0.0
    mean: float = 0.0
    spread: float = 0.0
    errors: list[float] = field(default_factory=lambda: [0.0, 0.0, 0.0])
    seen: list[int] = field(default_factory=lambda: [0, 0, 0])
    day: list[float | None] = field(default_factory=list)
    week: list[float | None] = field(default_factory=list)
    short: float = 0.0
    long_mean: float = 0.0
    long_var: float = 1.0
    peak: float = 0.0
    since_peak: int = 0
    # shape novelty
    lo: float = math.inf
    hi: float = -math.inf
    block_sum: float = 0.0
    block_count: int = 0
    steps: list[float] = field(default_factory=list)
    prototypes: np.ndarray = field(default_factory=lambda: np.zeros((0, 0), dtype="<f4"))
    matched: list[int] = field(default_factory=list)
    last_novel: int = -(10**9)
    novelties: float = 0.0
    # both
    last_detection: int = -(10**9)
    active: Direction | None = None
    alert_base: float = 0.0
    pending: bool | None = None
    alert_points: int = 0

    def __post_init__(self) -> None:
        per_day = round(86400 / self.step_s) if self.step_s > 0 else 0
        if not self.day and 2 <= per_day <= self.config.max_slots:
            self.day = [None] * per_day
        if not self.week and 2 <= per_day * 7 <= self.config.max_slots:
            self.week = [None] * (per_day * 7)

    # -- prediction error ------------------------------------------------------------

    def _predictions(self, slot: int) -> list[float | None]:
        day = self.day[slot % len(self.day)] if self.day else None
        week = self.week[slot % len(self.week)] if self.week else None
        return [self.level if self.n else None, day, week]

    def _seasonal_guess(self, slot: int) -> float | None:
        """The most accurate seasonal profile's value for ``slot``, if any."""
        _, day, week = self._predictions(slot)
        options = [(self.errors[k], p) for k, p in ((1, day), (2, week))
                   if p is not None and self.seen[k]]
        return min(options)[1] if options else None

    def _bridge(self, last: int, slot: int) -> None:
        """Missing points: the level moves to what the seasonal profile expected there, so
        the first point after a gap is not judged against a stale level. (Shapes are of the
        points seen: on NAB, filling them in loses detections.)"""
        for missing in range(max(last + 1, slot - 64), slot):
            guess = self._seasonal_guess(missing)
            if guess is not None:
                self.level += self.config.level_alpha * (guess - self.level)

    def _learn(self, slot: int, value: float, predictions: list[float | None],
               expected: float, sigma: float, floor: float) -> None:
        """Predictors learn the point, a robust amount of it once warm."""
        c = self.config
        warm = self.n >= c.warmup_points
        bound = c.clip * sigma if warm else math.inf
        learn = expected + max(-bound, min(bound, value - expected))
        for k, p in enumerate(predictions):
            if p is not None:
                err = min(abs(value - p), bound)
                self.errors[k] = err if self.seen[k] == 0 else (
                    self.errors[k] + c.error_alpha * (err - self.errors[k]))
                self.seen[k] += 1
        if self.n == 0:
            self.level = self.mean = value
        else:
            self.level += c.level_alpha * (learn - self.level)
            self.mean += c.scale_alpha * (value - self.mean)
            self.spread += c.scale_alpha * (abs(value - self.mean) - self.spread)
        for k, profile in ((1, self.day), (2, self.week)):
            if profile:
                i = slot % len(profile)
                old = profile[i]
                if old is None:
                    profile[i] = _f32(value)
                else:
                    bound = c.season_clip * (self.errors[k] + floor) if warm else math.inf
                    profile[i] = _f32(old + c.season_alpha * max(-bound, min(bound, learn - old)))

    # -- shape novelty -----------------------------------------------------------------

    def _novelty(self, value: float) -> float:
        """Distance of the recent shape (block means, the current block partial) from the
        nearest remembered prototype, in shares of the range learnt while warming up; a new
        shape is remembered, a known one refined. 0 when the shape is known."""
        c = self.config
        if self.n < c.range_points:
            self.lo, self.hi = min(self.lo, value), max(self.hi, value)
        self.block_sum += value
        self.block_count += 1
        if self.block_count == c.shape_block:
            self.steps.append(self.block_sum / c.shape_block)
            self.block_sum, self.block_count = 0.0, 0
            if len(self.steps) > c.shape_width:
                del self.steps[0]
        if len(self.steps) < c.shape_width:
            return 0.0
        span = (self.hi - self.lo) or 1.0
        last = self.block_sum / self.block_count if self.block_count else self.steps[-1]
        vector = (np.array([*self.steps[:-1], last]) - self.lo) / span
        if len(self.prototypes):
            distances = ((self.prototypes - vector) ** 2).mean(axis=1)
            best = int(distances.argmin())
            distance = math.sqrt(float(distances[best]))
        else:
            best, distance = -1, math.inf
        if distance <= c.shape_vigilance:
            self.prototypes[best] += c.shape_rate * (vector - self.prototypes[best])
            self.matched[best] = self.n
            return 0.0
        if len(self.prototypes) < c.shape_memory:
            self.prototypes = np.vstack([self.prototypes.reshape(-1, len(vector)),
                                         vector]).astype("<f4")
            self.matched.append(self.n)
        else:
            oldest = min(range(len(self.matched)), key=self.matched.__getitem__)
            self.prototypes[oldest], self.matched[oldest] = vector, self.n
        if self.n < c.range_points or self.n - self.last_novel <= c.shape_rest:
            return 0.0
        self.last_novel = self.n
        return min(distance, 1.0)

    # -- the point -----------------------------------------------------------------------

    def update(self, at: float, value: float) -> Reading:
        """Feed the point at epoch second ``at`` (gaps of whole steps are allowed)."""
        c = self.config
        slot = round(at / self.step_s)
        if self.last_slot is not None and slot <= self.last_slot:
            slot = self.last_slot + 1  # off the grid (irregular clocks): the next point
        if self.last_slot is not None and slot - self.last_slot > 1:
            self._bridge(self.last_slot, slot)
        self.last_slot = slot
        predictions = self._predictions(slot)
        floor = c.scale_floor * self.spread + 1e-9
        best, best_error = None, math.inf
        for k, p in enumerate(predictions):
            if p is not None and self.seen[k] >= 1 and self.errors[k] < best_error:
                best, best_error = k, self.errors[k]
        expected = value if best is None else predictions[best]
        assert expected is not None
        sigma = (best_error if best is not None else 0.0) + floor
        residual = value - expected
        surprise = min(abs(residual) / sigma, 50.0)

        warm = self.n >= c.warmup_points
        error_score = 0.0
        if warm:
            self.short += c.short_alpha * (surprise - self.short)
            error_score = _likelihood_score(self.short, self.long_mean, self.long_var)
        else:
            self.short = surprise
        self.long_mean += c.long_alpha * (surprise - self.long_mean)
        self.long_var += c.long_alpha * ((surprise - self.long_mean) ** 2 - self.long_var)
        damped = error_score
        self.since_peak += 1
        if self.since_peak > c.suppress_points:
            self.peak = 0.0
        if error_score > self.peak:
            self.peak, self.since_peak = error_score, 0
        else:
            damped *= c.damp

        novelty = self._novelty(value)
        if novelty:
            novelty /= 1.0 + c.novelty_penalty * self.novelties
        self.novelties = self.novelties * 0.5 ** (1.0 / c.novelty_half_life) + (
            1.0 if novelty else 0.0)

        score = 0.0
        if warm:
            score = min(1.0, 0.5 * max(damped / c.error_level, novelty / c.shape_vigilance))
            if score >= 0.5:
                if self.n - self.last_detection <= c.rest_points:
                    score *= 0.49
                else:
                    self.last_detection = self.n

        base, scale = self._baseline(slot)
        self._learn(slot, value, predictions, expected, sigma, floor)
        self.n += 1

        alert: Literal["start", "end"] | None = None
        if self.active is None:
            magnitude = (value - base) / abs(base) if base else 0.0
            z = (value - base) / scale
            off = warm and abs(z) >= c.alert_z and abs(magnitude) >= c.alert_magnitude
            # One point far off opens an alert; a moderate change must hold for two.
            if off and (abs(z) >= 2 * c.alert_z or self.pending == (z > 0)):
                self.active, alert = ("up" if z > 0 else "down"), "start"
                self.alert_base, self.alert_points = base, 0
            self.pending = (z > 0) if off else None
        else:
            # Judged against the baseline from before the alert (or the time of day's).
            if base == self.mean:
                base = self.alert_base
            magnitude = (value - base) / abs(base) if base else 0.0
            self.alert_points += 1
            if (abs(value - base) < 2 * scale or abs(magnitude) < c.alert_magnitude / 2
                    or self.alert_points >= c.alert_max_points):
                self.active, alert = None, "end"
        return Reading(score, base, self.active, alert, magnitude)

    def _baseline(self, slot: int) -> tuple[float, float]:
        """What demand usually is at this point, and by how much it usually differs: the
        time of day's (or week's) profile where it explains the series better than the
        slow mean does, else the slow mean. Alerts are
        judged against it, not against the fast level, which soon learns a surge."""
        # The spread starts from 0: corrected for that start, as Adam corrects its moments.
        spread = self.spread / (1.0 - (1.0 - self.config.scale_alpha) ** max(self.n, 1))
        floor = self.config.scale_floor * spread + 1e-9
        _, day, week = self._predictions(slot)
        options = [(self.errors[k] + floor, p)
                   for k, p, period in ((1, day, len(self.day)), (2, week, len(self.week)))
                   if p is not None and self.seen[k] >= period
                   and self.errors[k] < 0.8 * spread]
        if options:
            scale, guess = min(options)
            return guess, scale
        return self.mean, spread + 1e-9

    def forecast(self, horizon: int) -> list[float]:
        """Expected values of the next ``horizon`` points: the seasonal profile, shifted by
        how far the level now sits from it (a gap that closes as the horizon grows)."""
        slot = self.last_slot or 0
        now = self._seasonal_guess(slot)
        out = []
        for h in range(1, horizon + 1):
            ahead = self._seasonal_guess(slot + h)
            if now is None or ahead is None:
                out.append(self.level)
            else:
                out.append(ahead + (self.level - now) * 0.9 ** h)
        return out

    def to_state(self) -> dict[str, Any]:
        """JSON-able state, so a worker can persist it with its offsets (profiles and
        prototypes as base64 single floats; the configuration is not part of it: a
        restored detector takes the current one)."""
        state = {f.name: getattr(self, f.name) for f in fields(self) if f.name != "config"}
        state["day"], state["week"] = _pack(self.day), _pack(self.week)
        state["prototypes"] = {"rows": int(self.prototypes.shape[0]),
                               "data": base64.b64encode(self.prototypes.tobytes()).decode()}
        return state

    @classmethod
    def from_state(cls, state: dict[str, Any],
                   config: DetectorConfig | None = None) -> SpikeDetector:
        known = {f.name for f in fields(cls)} - {"config"}
        values = {k: v for k, v in state.items() if k in known}
        values["day"], values["week"] = _unpack(state["day"]), _unpack(state["week"])
        protos = state["prototypes"]
        flat = np.frombuffer(base64.b64decode(protos["data"]), dtype="<f4").copy()
        values["prototypes"] = flat.reshape(protos["rows"], -1 if protos["rows"] else 0)
        return cls(config=config or DetectorConfig(), **values)
