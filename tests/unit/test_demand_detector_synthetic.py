"""The spike detector's anomaly score on synthetic series: each kind of change is detected
(a score >= 0.5) soon after it happens and not before, and noise alone is never a detection.

The series are five-minute demand with a daily shape and noise, two weeks long; the change
comes after ten days, well after the warm-up.
"""

from __future__ import annotations

import math
import random
from collections.abc import Callable

import pytest

from rapport.profile.demand.detector import DetectorConfig, SpikeDetector

STEP = 300.0
PER_DAY = 288
DAYS = 14
CHANGE = PER_DAY * 10 + 150          # mid-afternoon of day 10
START = DetectorConfig().warmup_points   # detections are judged from the warm-up on


def daily(i: int) -> float:
    return 100.0 * (1.0 + 0.5 * math.sin(2 * math.pi * (i % PER_DAY) / PER_DAY - math.pi / 2))


def scores(values: list[float]) -> list[float]:
    detector = SpikeDetector(step_s=STEP)
    return [detector.update(1_700_000_000 + i * STEP, v).score for i, v in enumerate(values)]


def detections(values: list[float]) -> list[int]:
    return [i for i, s in enumerate(scores(values)) if s >= 0.5 and i >= START]


def series(change: Callable[[int, float], float], seed: int, noise: float = 3.0
           ) -> list[float]:
    rng = random.Random(seed)
    out = []
    for i in range(PER_DAY * DAYS):
        v = daily(i) + rng.gauss(0, noise)
        out.append(max(0.0, change(i, v) if i >= CHANGE else v))
    return out


CHANGES: dict[str, tuple[Callable[[int, float], float], int]] = {
    # name: (what happens from CHANGE on, how many points later it must be detected by)
    "surge": (lambda i, v: v * 3 if i < CHANGE + 12 else v, 3),
    "drop": (lambda i, v: v * 0.2 if i < CHANGE + 24 else v, 3),
    "level shift up": (lambda i, v: v + 80, 6),
    "level shift down": (lambda i, v: v * 0.4, 6),
    "flat day (pattern lost)": (lambda i, v: 100.0 + (v - daily(i)) if i < CHANGE + PER_DAY
                                else v, 100),
    "doubled daily swing": (lambda i, v: v + (daily(i) - 100.0), 144),
    "slow drift up": (lambda i, v: v + 150.0 * (i - CHANGE) / PER_DAY, PER_DAY),
}


@pytest.mark.parametrize("name", list(CHANGES))
@pytest.mark.parametrize("seed", [1, 2, 3])
def test_a_change_is_detected_soon_after_it_and_not_before(name: str, seed: int) -> None:
    change, within = CHANGES[name]
    found = detections(series(change, seed))
    assert found, f"{name}: never detected"
    assert CHANGE <= found[0] <= CHANGE + within, f"{name}: first detection at {found[0]}"


@pytest.mark.parametrize("name", ["surge", "drop", "level shift up", "level shift down"])
@pytest.mark.parametrize("at", [400, 500])
def test_a_change_on_a_young_series_is_found(name: str, at: int) -> None:
    """Short series (NAB's ad exchange and traffic files: 1,500-2,500 points) have their
    anomalies a day or two in: every view judges from the warm-up on, before a daily
    pattern is learnt (with new shapes judged from point 750 on, as until 2026-12-03,
    none of these was found)."""
    change, _ = CHANGES[name]
    rng = random.Random(at)
    values = [daily(i) + rng.gauss(0, 3.0) for i in range(1200)]
    values = [max(0.0, change(i - at + CHANGE, v)) if i >= at else v
              for i, v in enumerate(values)]
    found = detections(values)
    assert found and at <= found[0] <= at + 16, (found, at)


@pytest.mark.parametrize("at", [DetectorConfig().territory_points + 20, 600])
def test_a_young_series_knows_new_territory(at: int) -> None:
    """From ``territory_points`` on, a level never seen scores 1 (a fall as a rise); until
    2026-12-03 it was judged only from point 750, so most of a 1,600-point file had no
    such view, and its first anomalies came as weak shape or error scores."""
    for factor in (3.0, 0.2):
        rng = random.Random(at)
        values = [100.0 + rng.gauss(0, 3.0) for _ in range(at)] + [100.0 * factor] * 4
        assert max(scores(values)[at:]) == 1.0, factor


@pytest.mark.parametrize("seed", [1, 2, 3, 4])
def test_noise_on_a_daily_pattern_is_never_a_detection(seed: int) -> None:
    assert detections(series(lambda i, v: v, seed)) == []


@pytest.mark.parametrize("seed", [1, 2, 3])
def test_noise_alone_is_never_a_detection(seed: int) -> None:
    rng = random.Random(seed)
    assert detections([50.0 + rng.gauss(0, 5) for _ in range(PER_DAY * DAYS)]) == []


def spiky_counts(rng: random.Random) -> list[float]:
    return [float(rng.randint(0, 6) + (rng.randint(20, 40) if rng.random() < 0.02 else 0))
            for _ in range(PER_DAY * DAYS)]


def test_one_off_bursts_rarely_make_a_detection() -> None:
    """Over 100 days of spiky counts (ten seeds), at most one false detection: a burst at
    the start of a shape block is one point, not a new shape."""
    found = [i for seed in range(10)
             for i in detections(spiky_counts(random.Random(100 + seed))[:CHANGE])]
    assert len(found) <= 1, found


def gapped(values: list[float], seed: int, share: float = 0.1
           ) -> tuple[list[float], list[float], list[int]]:
    """The series with ``share`` of its points missing (as irregular clocks lose them):
    times, values and the original index of each kept point."""
    rng = random.Random(seed)
    kept = [i for i in range(len(values)) if i < 10 or rng.random() >= share]
    return [1_700_000_000 + i * STEP for i in kept], [values[i] for i in kept], kept


def gapped_detections(values: list[float], seed: int) -> list[int]:
    times, vals, kept = gapped(values, seed)
    detector = SpikeDetector(step_s=STEP)
    return [kept[j] for j, (t, v) in enumerate(zip(times, vals, strict=True))
            if detector.update(t, v).score >= 0.5 and kept[j] >= START]


def test_missing_points_rarely_make_a_detection() -> None:
    """A tenth of the points missing at random, ten series of two weeks: the level's error
    widens over a gap and shape blocks are spans of time, so a gap is no surprise. What is
    left are shapes just past the vigilance: 12 false detections in 30 such series
    measured (2026-12-02), at most 6 in these 10 (5 measured)."""
    found = [i for seed in range(1, 11)
             for i in gapped_detections(series(lambda i, v: v, seed), seed)]
    assert len(found) <= 6, found


@pytest.mark.parametrize("name", ["surge", "drop", "level shift up"])
@pytest.mark.parametrize("seed", [4, 5])
def test_a_change_is_still_found_with_points_missing(name: str, seed: int) -> None:
    change, within = CHANGES[name]
    found = [i for i in gapped_detections(series(change, seed), seed) if i >= CHANGE]
    assert found and found[0] <= CHANGE + within + 2, found


@pytest.mark.parametrize("seed", [1, 2])
def test_spiky_counts_are_not_detections_but_a_surge_is(seed: int) -> None:
    """Counts with frequent one-off bursts (tweets, ad clicks): the bursts are the series'
    normal, a sustained surge is not."""
    rng = random.Random(seed)
    values = [float(rng.randint(0, 6) + (rng.randint(20, 40) if rng.random() < 0.02 else 0))
              for _ in range(PER_DAY * DAYS)]
    assert detections(values[:CHANGE]) == []
    for i in range(CHANGE, CHANGE + 36):
        values[i] += 60.0
    found = detections(values)
    assert found and CHANGE <= found[0] <= CHANGE + 6


def test_a_burst_past_any_seen_is_found_on_counts_that_burst_anyway() -> None:
    """On spiky counts a burst is normal, so its prediction error is no surprise; one to
    twice the height of any before is new territory (:mod:`.extremes`) and is found in
    all ten series (without new territory: five, measured 2026-12-03)."""
    found = 0
    for seed in range(10):
        values = spiky_counts(random.Random(seed))
        values[3000] = 90.0
        found += 3000 in detections(values)
    assert found == 10
