"""The spike detector on synthetic series, and the NAB scorer on hand-made corpora."""

from __future__ import annotations

import math
import random
from datetime import datetime, timedelta

import orjson
import pytest

from rapport.profile.demand import nab
from rapport.profile.demand.detector import DetectorConfig, Reading, SpikeDetector

STEP = 300.0  # five-minute buckets
PER_DAY = int(86400 / STEP)
T0 = 1_700_000_000 - 1_700_000_000 % 86400


def seasonal(i: int, rng: random.Random, base: float = 100.0) -> float:
    """Daily and weekly demand shape with noise: busy afternoons, quiet nights, weekends."""
    day = math.sin(2 * math.pi * (i % PER_DAY) / PER_DAY - math.pi / 2)
    weekend = 0.8 if (i // PER_DAY) % 7 in (5, 6) else 1.0
    return max(0.0, base * weekend * (1 + 0.6 * day) + rng.gauss(0, 4))


def feed(values: list[float | None], detector: SpikeDetector | None = None,
         ) -> tuple[SpikeDetector, list[Reading | None]]:
    """Feed points (None: a missing bucket) and return every reading."""
    detector = detector or SpikeDetector(step_s=STEP)
    readings: list[Reading | None] = []
    for i, v in enumerate(values):
        readings.append(None if v is None else detector.update(T0 + i * STEP, v))
    return detector, readings


def alerts(readings: list[Reading | None], start: int = 0) -> list[tuple[int, str, str | None]]:
    return [(i, r.alert, r.direction) for i, r in enumerate(readings)
            if r is not None and r.alert and i >= start]


WARM = DetectorConfig().range_points


def test_step_up_then_down_opens_an_up_alert_then_a_down_alert() -> None:
    rng = random.Random(1)
    values = [100 + rng.gauss(0, 3) for _ in range(1500)]
    values += [180 + rng.gauss(0, 3) for _ in range(800)]
    values += [100 + rng.gauss(0, 3) for _ in range(800)]
    _, readings = feed(values)
    starts = [(i, d) for i, kind, d in alerts(readings, WARM) if kind == "start"]
    assert starts, "no alert for a step of +80 %"
    first, direction = starts[0]
    assert 1500 <= first <= 1510 and direction == "up"
    assert readings[first].magnitude == pytest.approx(0.8, abs=0.15)
    down = [i for i, d in starts if i >= 2300]
    assert down and down[0] <= 2310 and readings[down[0]].direction == "down"
    assert all(1500 <= i for i, _ in starts), "alert before the step"


def test_single_spike_is_one_alert_that_ends() -> None:
    rng = random.Random(2)
    values = [50 + rng.gauss(0, 2) for _ in range(2000)]
    values[1500] = 400
    _, readings = feed(values)
    found = alerts(readings, WARM)
    assert found[0][:3] == (1500, "start", "up")
    assert [k for _, k, _ in found] == ["start", "end"], found
    assert found[1][0] <= 1520, "the alert stays open after the series is back to normal"
    assert readings[1500].expected == pytest.approx(50, abs=5)


def test_seasonal_series_without_anomaly_raises_no_alert() -> None:
    rng = random.Random(3)
    values = [seasonal(i, rng) for i in range(PER_DAY * 21)]
    _, readings = feed(values)
    assert alerts(readings, WARM) == []


def test_missing_buckets_keep_the_daily_phase_and_raise_no_alert() -> None:
    rng = random.Random(4)
    values: list[float | None] = [seasonal(i, rng) for i in range(PER_DAY * 21)]
    for start in range(PER_DAY * 4, PER_DAY * 20, PER_DAY + 37):  # a gap of 2 h every day
        for i in range(start, start + 24):
            values[i] = None
    _, readings = feed(values)
    assert alerts(readings, WARM) == []
    # After a gap the baseline is still the time of day's, not the level before the gap.
    after_gap = [i for i in range(PER_DAY * 10, PER_DAY * 20)
                 if values[i] is not None and values[i - 1] is None]
    for i in after_gap:
        assert readings[i].expected == pytest.approx(seasonal(i, random.Random(0)), abs=25)


def test_seasonal_series_with_a_dropped_afternoon_alerts_down() -> None:
    rng = random.Random(5)
    values = [seasonal(i, rng) for i in range(PER_DAY * 21)]
    hit = PER_DAY * 17 + PER_DAY // 2  # the busiest hours of day 17 go quiet
    for i in range(hit, hit + 24):
        values[i] = 20.0
    _, readings = feed(values)
    starts = [(i, d) for i, kind, d in alerts(readings, WARM) if kind == "start"]
    assert starts and hit <= starts[0][0] <= hit + 6 and starts[0][1] == "down"


def test_state_round_trip_gives_the_same_readings() -> None:
    rng = random.Random(6)
    values = [seasonal(i, rng) for i in range(PER_DAY * 3)]
    half, _ = feed(values[: len(values) // 2])
    restored = SpikeDetector.from_state(orjson.loads(orjson.dumps(half.to_state())))
    rest = values[len(values) // 2:]
    a = [restored.update(T0 + (len(values) // 2 + i) * STEP, v) for i, v in enumerate(rest)]
    again, _ = feed(values[: len(values) // 2])
    b = [again.update(T0 + (len(values) // 2 + i) * STEP, v) for i, v in enumerate(rest)]
    assert a == b


# NAB scorer ------------------------------------------------------------------------

def _corpus(n: int, window: tuple[int, int], detections: list[int]):
    t0 = datetime(2020, 1, 1)
    ts = [t0 + timedelta(minutes=5 * i) for i in range(n)]
    scores = [1.0 if i in detections else 0.0 for i in range(n)]
    return {"f.csv": (ts, scores)}, {"f.csv": [(ts[window[0]], ts[window[1]])]}


def test_nab_detection_at_window_start_is_perfect_and_none_is_null() -> None:
    files, windows = _corpus(1000, (500, 599), [500])
    result = nab.score_corpus(files, windows, nab.PROFILES[0])
    assert result.normalised == pytest.approx(100.0)
    files, windows = _corpus(1000, (500, 599), [])
    assert nab.score_corpus(files, windows, nab.PROFILES[0]).normalised == pytest.approx(0.0)


def test_nab_later_detection_earns_less_and_false_positives_cost() -> None:
    files, windows = _corpus(1000, (500, 599), [550])
    mid = nab.score_corpus(files, windows, nab.PROFILES[0])
    # Relative position -(599 - 550 + 1)/100 = -0.5: 2*sigmoid(2.5) - 1, over the max TP.
    assert mid.raw == pytest.approx(nab.scaled_sigmoid(-0.5) / nab.MAX_TP)
    files, windows = _corpus(1000, (500, 599), [500, 300])
    with_fp = nab.score_corpus(files, windows, nab.PROFILES[0])
    assert with_fp.raw == pytest.approx(1.0 - 0.11)  # an FP before any window: full weight
    files, windows = _corpus(1000, (500, 599), [500, 100])  # 100 is in probation: free
    assert nab.score_corpus(files, windows, nab.PROFILES[0]).raw == pytest.approx(1.0)


def test_nab_threshold_is_chosen_over_the_corpus() -> None:
    t0 = datetime(2020, 1, 1)
    ts = [t0 + timedelta(minutes=5 * i) for i in range(1000)]
    scores = [0.0] * 1000
    scores[520] = 0.9            # a hit
    for i in range(700, 760):    # many weaker false positives
        scores[i] = 0.5
    result = nab.score_corpus({"f.csv": (ts, scores)}, {"f.csv": [(ts[500], ts[599])]},
                              nab.PROFILES[0])
    assert result.threshold == 0.9 and result.tp == 1 and result.fp == 0


def test_eval_spikes_command_writes_nab_results_and_prints_scores_last(
        tmp_path, capsys) -> None:
    from rapport.shared.cli import main

    rng = random.Random(8)
    data = tmp_path / "data" / "synthetic"
    data.mkdir(parents=True)
    t0 = datetime(2024, 1, 1)
    ts = [t0 + timedelta(minutes=5 * i) for i in range(3000)]
    values = [seasonal(i, rng) for i in range(3000)]
    for i in range(2200, 2300):
        values[i] *= 3  # a surge the detector must catch
    (data / "surge.csv").write_text("timestamp,value\n" + "".join(
        f"{t:%Y-%m-%d %H:%M:%S},{v:.3f}\n" for t, v in zip(ts, values, strict=True)))
    windows = tmp_path / "windows.json"
    windows.write_bytes(orjson.dumps({"synthetic/surge.csv": [
        [f"{ts[2150]:%Y-%m-%d %H:%M:%S}.000000", f"{ts[2350]:%Y-%m-%d %H:%M:%S}.000000"]]}))
    results = tmp_path / "results"

    assert main(["eval-spikes", "--data", str(tmp_path / "data"), "--windows", str(windows),
                 "--results", str(results)]) == 0
    last = capsys.readouterr().out.strip().splitlines()[-1]
    scores = orjson.loads(last)
    assert set(scores) == {"standard", "reward_low_FP_rate", "reward_low_FN_rate"}
    assert scores["standard"] > 50  # the surge is found early, with few false alarms
    rows = (results / "synthetic" / "rapport_surge.csv").read_text().splitlines()
    assert rows[0] == "timestamp,value,anomaly_score,label" and len(rows) == 3001
    assert rows[2151].endswith(",1") and rows[2149].endswith(",0")
    assert main(["eval-spikes", "--data", str(tmp_path / "nowhere"),
                 "--windows", str(windows)]) == 2
    windows.write_bytes(orjson.dumps({"synthetic/surge.csv": [["2031-01-01 00:00:00",
                                                               "2031-01-02 00:00:00"]]}))
    assert main(["eval-spikes", "--data", str(tmp_path / "data"),
                 "--windows", str(windows)]) == 2
    assert "is not a timestamp of the file" in " ".join(capsys.readouterr().out.split())
