"""The demand forecaster: patterns learnt, intervals that hold what they claim, a state
that round-trips, and the rolling-origin evaluation that scores it."""

from __future__ import annotations

import math
import random

import orjson
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from rapport.profile.demand.forecast import Forecaster
from rapport.profile.evaluation import forecasts

HOUR, DAY = 3600, 86400
T0 = 1_700_006_400          # a Wednesday, 00:00 UTC


def daily(t: float) -> float:
    return 100 + 40 * math.sin(2 * math.pi * (t % DAY) / DAY)


def weekly(t: float) -> float:
    weekend = ((t // DAY) + 3) % 7 >= 5      # 1970-01-01 was a Thursday
    return daily(t) * (0.5 if weekend else 1.0)


def feed(forecaster: Forecaster, truth, step: int, points: int, *, noise: float = 0.0,
         seed: int = 1, start: int = T0) -> int:
    rng = random.Random(seed)
    t = start
    for i in range(points):
        t = start + i * step
        forecaster.update(t, truth(t) + rng.gauss(0, noise))
    return t


def test_a_noiseless_daily_pattern_is_forecast_a_day_ahead():
    f = Forecaster(step_s=300)
    last = feed(f, daily, 300, 288 * 5)
    ahead = f.forecast(288)
    assert [p.at for p in ahead[:2]] == [last + 300, last + 600]
    worst = max(abs(p.expected - daily(p.at)) for p in ahead)
    assert worst < 2.0       # of a 40-wide swing


def test_the_weekly_pattern_tells_a_weekend_from_a_weekday():
    f = Forecaster(step_s=HOUR)
    last = feed(f, weekly, HOUR, 24 * 7 * 4, noise=2.0)
    ahead = {p.at: p.expected for p in f.forecast(24 * 7)}
    weekend = [v for t, v in ahead.items() if ((t // DAY) + 3) % 7 >= 5]
    weekday = [v for t, v in ahead.items() if ((t // DAY) + 3) % 7 < 5]
    assert sum(weekend) / len(weekend) < 0.8 * sum(weekday) / len(weekday)
    assert last + HOUR in ahead


@pytest.mark.parametrize("seed", [1, 2, 3])
def test_eighty_percent_intervals_hold_about_eighty_percent_of_what_comes(seed):
    """Gaussian noise on a daily pattern, scored rolling-origin over three weeks."""
    step = 1800
    times = [T0 + i * step for i in range(48 * 24)]
    rng = random.Random(seed)
    values = [daily(t) + rng.gauss(0, 8) for t in times]
    score = forecasts.score_series("noisy", times, values, step)
    for tally in (score.hour, score.day):
        assert tally.coverage is not None and 0.7 <= tally.coverage <= 0.9
        # the smoothed pattern beats last day's noisy value
        assert tally.mase is not None and tally.mase < 0.9


def test_an_exactly_repeating_series_is_forecast_by_its_last_day():
    """Where the naive forecast is never wrong, the blend learns to lean on it."""
    step = 300
    square = [50.0 if (i // 36) % 2 else 10.0 for i in range(288)]
    times = [T0 + i * step for i in range(288 * 6)]
    values = [square[i % 288] for i in range(len(times))]
    score = forecasts.score_series("square", times, values, step)
    assert score.day.mase is None            # the naive's error is zero: no ratio
    assert score.day.abs_error / score.day.points < 0.5


def test_after_a_level_shift_the_forecast_follows_within_a_day():
    f = Forecaster(step_s=HOUR)
    last = feed(f, daily, HOUR, 24 * 10, noise=1.0)
    feed(f, lambda t: daily(t) + 60, HOUR, 24, noise=1.0, start=last + HOUR)
    ahead = f.forecast(24)
    gap = sum(p.expected - daily(p.at) for p in ahead) / len(ahead)
    assert 0.6 * 60 < gap < 75         # most of the way there


def test_a_persistent_residual_fades_from_the_forecast():
    """An AR(1) residual (strongly persistent) on a flat level: one step ahead the
    forecast keeps most of the last residual; far ahead it is back at the level."""
    f = Forecaster(step_s=300)
    rng = random.Random(5)
    r, i = 0.0, 0
    while i < 288 * 4 or abs(r) < 5:
        r = 0.95 * r + rng.gauss(0, 1)
        f.update(T0 + i * 300, 100 + r)
        i += 1
    ahead = f.forecast(200)
    assert f.persistence > 0.8
    assert 0.6 * abs(r) < abs(ahead[0].expected - 100) <= abs(r) + 1
    assert (ahead[0].expected - 100) * r > 0
    assert abs(ahead[-1].expected - 100) < 3


def test_intervals_widen_with_the_horizon_and_contain_the_forecast():
    f = Forecaster(step_s=300)
    rng = random.Random(9)
    r = 0.0
    for i in range(288 * 5):
        r = 0.9 * r + rng.gauss(0, 1)
        f.update(T0 + i * 300, daily(T0 + i * 300) + r)
    ahead = f.forecast(288)
    assert all(p.lower <= p.expected <= p.upper for p in ahead)
    assert ahead[-1].upper - ahead[-1].lower > ahead[0].upper - ahead[0].lower


def test_gaps_leave_the_clock_right():
    f = Forecaster(step_s=300)
    feed(f, daily, 300, 100)
    f.update(T0 + 150 * 300, daily(T0 + 150 * 300))
    assert f.forecast(1)[0].at == T0 + 151 * 300


def test_memory_is_constant_per_series():
    f = Forecaster(step_s=300)
    feed(f, daily, 300, 288 * 8, noise=3.0)
    def shape(state):
        return {k: len(v) if isinstance(v, str | list) else None for k, v in state.items()}

    size = shape(f.to_state())
    feed(f, daily, 300, 288 * 8, noise=3.0, start=T0 + 288 * 8 * 300)
    assert shape(f.to_state()) == size


@settings(max_examples=25, deadline=None)
@given(st.lists(st.floats(0, 1e6, allow_nan=False), min_size=1, max_size=400),
       st.integers(1, 300))
def test_a_restored_state_forecasts_and_learns_exactly_like_the_original(values, cut):
    a = Forecaster(step_s=600)
    for i, v in enumerate(values):
        a.update(T0 + i * 600, v)
    b = Forecaster.from_state(orjson.loads(orjson.dumps(a.to_state())))
    assert b.forecast(12) == a.forecast(12)
    for i in range(cut):
        for f in (a, b):
            f.update(T0 + (len(values) + i) * 600, float(i % 17))
    assert orjson.dumps(a.to_state()) == orjson.dumps(b.to_state())


def test_the_forecaster_scores_itself_as_the_evaluation_does():
    """The live self-score (checked at every point) tells the same story as the
    rolling-origin evaluation: under 1 against the naive, about 80 % covered."""
    f = Forecaster(step_s=1800)
    feed(f, daily, 1800, 48 * 20, noise=8.0, seed=4)
    quality = {q.horizon: q for q in f.quality()}
    assert set(quality) == {"next_hour", "next_day"}
    for q in quality.values():
        assert q.points > 100
        assert q.mase is not None and q.mase < 0.9
        assert 0.7 <= q.covered <= 0.9


def test_eval_forecast_scores_a_corpus_and_says_what_is_wrong_with_bad_input(tmp_path, capsys):
    from rapport.shared.cli import main

    folder = tmp_path / "data" / "shop"
    folder.mkdir(parents=True)
    rng = random.Random(3)
    rows = ["timestamp,value"] + [
        f"2024-01-{1 + i // 48:02d} {(i % 48) // 2:02d}:{30 * (i % 2):02d}:00,"
        f"{daily(i * 1800) + rng.gauss(0, 5):.3f}" for i in range(48 * 6)]
    (folder / "visits.csv").write_text("\n".join(rows) + "\n")
    assert main(["eval-forecast", "--data", str(tmp_path / "data")]) == 0
    figures = orjson.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert figures["series"] == 1 and figures["day_mase"] < 1.0
    assert 0.6 < figures["day_coverage"] < 0.95
    assert main(["eval-forecast", "--data", str(tmp_path / "nowhere")]) == 2
    (folder / "broken.csv").write_text("timestamp,value\nyesterday,3\n")
    assert main(["eval-forecast", "--data", str(tmp_path / "data")]) == 2


def test_the_live_world_shops_more_in_the_evening_and_at_weekends_in_time_order():
    from rapport.profile.evaluation import forecast_live

    wednesday_8pm, wednesday_4am = T0 + 20 * HOUR, T0 + 4 * HOUR
    assert forecast_live.intensity(wednesday_8pm) > 3 * forecast_live.intensity(wednesday_4am)
    saturday_8pm = wednesday_8pm + 3 * DAY
    assert forecast_live.intensity(saturday_8pm) > 1.3 * forecast_live.intensity(wednesday_8pm)
    buckets = list(forecast_live.journeys(0.5, 6.0, seed=2, end=T0 + DAY))
    assert len(buckets) == 12 * 12 - 1
    stamps = [m["timestamp"] for _, messages in buckets for m in messages]
    assert stamps == sorted(stamps) and len(stamps) > 100
