"""Streaming spike and shift detector for one demand series.

One point at a time, constant work and memory per series, three views of the series:

* **Prediction error** (:mod:`.predictors`, :mod:`.likelihood`). The recent level, the
  same time yesterday and the same time last week compete; the point's *surprise* is its
  distance from the prediction of the one lately most accurate, in units of that one's
  usual error (floored by a share of the series' spread), bounded at ``surprise_scale``
  of them. Surprises become a score through their own running distribution (Numenta's
  anomaly likelihood), so one threshold suits a calm series and a bursty one.
* **New territory** (:mod:`.extremes`). From ``territory_points`` on, a point past the
  lowest or highest value seen, by more than ``spatial_tolerance`` of their distance and
  a few usual errors, scores 1 (Numenta's spatial anomaly); so does a point on
  unvisited ground (:mod:`.ground`): inside that range, but as far from every value
  the series ever took.
* **Shape novelty** (:mod:`.novelty`). The recent shape against a bounded memory of
  prototype shapes (adaptive-resonance style): a shape unlike any seen is novel; the
  block still filling counts less its noise, so white noise makes no new shapes.

The point's score is the strongest of the three, 0.5 meaning "a detection"; within
``rest_points`` of a record score only a higher one counts, so an anomaly scores once,
at its start, whatever threshold NAB picks. That score is what NAB judges (``rapport
eval-spikes``). Stream alerts (:mod:`.stream_alerts`) ask ops' plainer question of the
same state.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Literal

from .extremes import Extremes
from .ground import Ground
from .likelihood import Likelihood
from .novelty import Shapes
from .predictors import Predictors
from .stream_alerts import AlertState, Direction

__all__ = ["DetectorConfig", "Direction", "Reading", "SpikeDetector", "View"]

View = Literal["error", "territory", "ground", "shape"]


@dataclass(frozen=True)
class DetectorConfig:
    """One configuration for every series (never per file); ``rapport eval-spikes
    --leave-one-out`` shows how each knob moves the NAB scores."""

    # Prediction error
    level_alpha: float = 0.8          # EWMA of the level predictor
    level_clip: float = 3.0           # the level learns at most this many error sizes off
    season_alpha: float = 0.1         # weight of the newest day/week in the profiles
    error_alpha: float = 0.01         # how fast the predictors' error sizes move
    scale_alpha: float = 0.005        # the series' overall spread (floors the error size)
    scale_floor: float = 0.4          # share of that spread an error size never goes under
    season_clip: float = 5.0          # profiles learn at most this many error sizes off
    surprise_scale: float = 8.0       # usual errors off that are fully surprising
    short_alpha: float = 0.5          # short average of surprises
    long_alpha: float = 0.005         # long distribution of surprises
    suppress_points: int = 200        # how long a peak of that score zeroes lower ones
    error_level: float = 1.5          # prediction-error score that is a detection
    # New territory
    spatial_tolerance: float = 0.05   # share of the range past an extreme that is new ...
    spatial_errors: float = 0.75      # ... plus this many usual errors, and more ...
    young_errors: float = 1.5         # ... while the shapes' range is still learnt
    territory_points: int = 400       # new territory is judged from this many points on
    ground_bins: int = 128            # slices of the range whose visits are kept: from
    ground_ratio: float = 0.5         # range_points on, a gap wider than this share of
                                      # the point's distance from the mean is new too ...
    ground_tolerance: float = 0.025   # ... and than this share of the range (+ errors)
    # Shape novelty
    shape_block: int = 8              # points averaged into one step of a shape
    shape_width: int = 8              # steps in a shape (block * width points of context)
    shape_vigilance: float = 0.15     # distance (share of the learnt range) that is new
    shape_rate: float = 0.1           # how far a matched prototype moves to the shape
    shape_memory: int = 256           # prototypes kept (least recently matched go first)
    shape_rest: int = 300             # a new shape scores at most once in this many points
    partial_noise: float = 2.0        # a block being filled counts less its noise (x this)
    partial_min: int = 3              # ... and only once it holds this many points
    novelty_penalty: float = 0.1      # new shapes weigh less where they keep coming ...
    novelty_half_life: float = 3000.0  # ... counted over about this many points
    range_points: int = 750           # the shapes' range is learnt this long
    # Both
    rest_points: int = 150            # after a record score, lower ones are 0 this long
    warmup_points: int = 150          # no score before this many points (of any view)
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
    view: View | None = None          # the view behind a score above 0


def _strongest(outside: bool, unvisited: bool, error: float,
               novelty: float) -> tuple[float, View | None]:
    """The point's score, the strongest view's, and which view that is."""
    if outside or unvisited:
        return 1.0, "territory" if outside else "ground"
    score = min(1.0, 0.5 * max(error, novelty))
    if score <= 0.0:
        return 0.0, None
    return score, "error" if error >= novelty else "shape"


@dataclass
class SpikeDetector:
    """Constant memory and work per point; ``step_s`` is the series' bucket width in seconds."""

    step_s: float
    config: DetectorConfig = field(default_factory=DetectorConfig)
    n: int = 0
    last_slot: int | None = None
    last_detection: int = -(10**9)
    last_peak: float = 0.0
    predictors: Predictors | None = None
    errors: Likelihood = field(default_factory=lambda: Likelihood(count=0))
    shapes: Shapes = field(default_factory=Shapes)
    extremes: Extremes = field(default_factory=Extremes)
    ground: Ground = field(default_factory=Ground)
    alerts: AlertState = field(default_factory=AlertState)

    def __post_init__(self) -> None:
        if self.predictors is None:
            self.predictors = Predictors.for_step(self.step_s, self.config.max_slots)

    def update(self, at: float, value: float) -> Reading:
        """Feed the point at epoch second ``at`` (gaps of whole steps are allowed)."""
        c, p = self.config, self.predictors
        assert p is not None
        slot = round(at / self.step_s)
        if self.last_slot is not None and slot <= self.last_slot:
            slot = self.last_slot + 1  # off the grid (irregular clocks): the next point
        # Missing points widen the level's usual error (see Predictors.error), rather
        # than being guessed: a guess from a poor profile is a surprise of its own.
        gap = 1 if self.last_slot is None else slot - self.last_slot
        self.last_slot = slot
        predictions = p.predictions(slot, self.n)
        floor = c.scale_floor * p.spread + 1e-9
        expected, sigma = p.best(predictions, value, floor, gap)
        # Bounded, as Numenta's raw scores are: on a bursty series how often points
        # surprise decides the likelihood, not how far one burst goes.
        surprise = min(1.0, abs(value - expected) / (sigma * c.surprise_scale))

        warm = self.n >= c.warmup_points
        error_score = self.errors.update(surprise, warm, c)
        novelty = self.shapes.update(self.n, slot, value, sigma, c)
        # A young range is known less well: its margin is wider (one-off bursts in counts).
        errors = c.young_errors if self.n < c.range_points else c.spatial_errors
        judged = self.extremes.seen >= c.range_points
        outside = self.extremes.update(value, c.spatial_tolerance, c.territory_points,
                                       errors * sigma)
        low, high = self.extremes.low, self.extremes.high
        unvisited = self.ground.update(value, low, high, c.ground_tolerance * (high - low)
                                       + errors * sigma, p.mean, c.ground_ratio,
                                       c.ground_bins, judge=judged and not outside)
        score, view = 0.0, None
        if warm:
            score, view = _strongest(outside, unvisited, error_score / c.error_level, novelty)
            # Within rest_points of the last record score only a higher one counts: an
            # anomaly scores once at any threshold, not once per point above it.
            if score > 0.0:
                if self.n - self.last_detection > c.rest_points or score > self.last_peak:
                    self.last_detection, self.last_peak = self.n, score
                else:
                    score, view = 0.0, None

        base, scale = p.baseline(slot, self.n, c)
        p.learn(slot, value, predictions, floor, self.n, warm, c, gap)
        self.n += 1
        alert, magnitude, base = self.alerts.step(value, base, scale, p.mean, warm, c)
        return Reading(score, base, self.alerts.active, alert, magnitude, view)

    def to_state(self) -> dict[str, Any]:
        """JSON-able state, so a worker can persist it with its offsets (the configuration
        is not part of it: a restored detector takes the current one)."""
        assert self.predictors is not None
        return {"step_s": self.step_s, "n": self.n, "last_slot": self.last_slot,
                "last_detection": self.last_detection, "last_peak": self.last_peak,
                "predictors": self.predictors.to_state(), "errors": self.errors.to_state(),
                "shapes": self.shapes.to_state(), "extremes": self.extremes.to_state(),
                "ground": self.ground.to_state(),
                "alerts": self.alerts.to_state()}

    @classmethod
    def from_state(cls, state: dict[str, Any],
                   config: DetectorConfig | None = None) -> SpikeDetector:
        """The detector a state was taken from (KeyError for another version's state)."""
        return cls(step_s=state["step_s"], config=config or DetectorConfig(), n=state["n"],
                   last_slot=state["last_slot"], last_detection=state["last_detection"],
                   last_peak=state["last_peak"],
                   predictors=Predictors.from_state(state["predictors"]),
                   errors=Likelihood.from_state(state["errors"]),
                   shapes=Shapes.from_state(state["shapes"]),
                   extremes=Extremes.from_state(state.get("extremes")),
                   ground=Ground.from_state(state.get("ground")),
                   alerts=AlertState.from_state(state["alerts"]))
