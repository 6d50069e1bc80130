"""The evaluation of the spike detector apart from the detector: NAB scoring over arrays
(the same figures as the reference scorer), leave-one-category-out selection and knob
sensitivity over tables of scores."""

from __future__ import annotations

import math
import random
from datetime import datetime, timedelta

import numpy as np
import pytest

from rapport.profile.demand import nab
from rapport.profile.demand.detector import DetectorConfig
from rapport.profile.evaluation import folds, grid, sweeps


def _files(seed: int) -> tuple[dict, dict]:
    rng = random.Random(seed)
    t0 = datetime(2020, 1, 1)
    files, windows = {}, {}
    for f in range(4):
        n = rng.randint(800, 3000)
        ts = [t0 + timedelta(minutes=5 * i) for i in range(n)]
        scores = [rng.random() ** 6 for _ in range(n)]
        wins, end = [], -1
        for start in sorted(rng.sample(range(n // 4, n - 120), rng.randint(0, 3))):
            if start <= end:
                continue
            wins.append((ts[start], ts[start + 100]))
            end = start + 100
            scores[start + rng.randint(0, 100)] = 0.9 + 0.1 * rng.random()
        files[f"c/{f}.csv"], windows[f"c/{f}.csv"] = (ts, scores), wins
    return files, windows


@pytest.mark.parametrize("seed", range(5))
def test_array_scoring_gives_the_reference_scorer_figures(seed: int) -> None:
    files, windows = _files(seed)
    for cost in nab.PROFILES:
        ref = nab.score_corpus(files, windows, cost)
        prepared = [sweeps.prepare(n, ts, windows[n], cost) for n, (ts, _) in files.items()]
        scores = [np.array(s) for _, s in files.values()]
        mine = sweeps.best_threshold(prepared, scores, cost)
        assert (mine.threshold, mine.tp, mine.fp) == (ref.threshold, ref.tp, ref.fp)
        assert mine.raw == pytest.approx(ref.raw) and mine.perfect == pytest.approx(ref.perfect)
        again = sweeps.at_threshold(prepared, scores, cost, ref.threshold)
        assert again.raw == pytest.approx(ref.raw) and (again.tp, again.fp) == (ref.tp, ref.fp)


def test_a_corpus_without_windows_has_no_normalised_score_but_counts_false_detections():
    t0 = datetime(2020, 1, 1)
    ts = [t0 + timedelta(minutes=5 * i) for i in range(1000)]
    scores = np.zeros(1000)
    scores[[500, 700]] = 0.8
    prepared = [sweeps.prepare("a/x.csv", ts, [], nab.PROFILES[0])]
    result = sweeps.at_threshold(prepared, [scores], nab.PROFILES[0], 0.5)
    assert result.normalised is None and result.fp == 2
    assert result.raw == pytest.approx(-0.22)


def test_the_held_out_category_is_never_used_to_choose_its_configuration() -> None:
    table = [
        {"a": 50.0, "b": 50.0, "c": 50.0, "none": None},   # default
        {"a": 90.0, "b": 10.0, "c": 55.0, "none": None},
        {"a": 60.0, "b": 60.0, "c": 0.0, "none": None},
    ]
    chosen = folds.folds(table, ["a", "b", "c", "none"])
    assert chosen["c"] == 2          # best mean on a and b (60), whatever it does on c
    assert chosen["a"] == 0          # b, c: 50 vs 32.5 vs 30
    assert chosen["b"] == 1          # a, c: 72.5
    assert chosen["none"] == 1       # a category without windows has no score to judge
    assert folds.training_mean(table[0], ["none"]) == -math.inf


def test_ties_keep_the_default() -> None:
    table = [{"a": 70.0, "b": 70.0}, {"a": 80.0, "b": 60.0}]
    assert folds.select(table, ["a", "b"]) == 0


def test_sensitivity_reports_the_largest_swing_first() -> None:
    moves = [folds.Moved("x", 0.5, 1.0, 40.0, 30.0), folds.Moved("x", 2.0, 4.0, 62.0, 50.0),
             folds.Moved("y", 0.5, 5.0, 59.0, 48.0), folds.Moved("y", 2.0, 20.0, 61.0, 49.0)]
    rows = folds.sensitivity({"x": 2.0, "y": 10.0}, 60.0, 50.0, moves)
    assert [r.knob for r in rows] == ["x", "y"]
    assert rows[0].swing == pytest.approx(20.0) and rows[1].swing == pytest.approx(1.0)
    assert rows[0].full == {0.5: 40.0, 1.0: 60.0, 2.0: 62.0}
    assert rows[0].worst_swing == pytest.approx(20.0)


def test_candidates_move_one_scored_knob_at_a_time() -> None:
    config = DetectorConfig()
    cands = grid.candidates(config, (0.5, 2.0))
    assert cands[0].knob is None and cands[0].config == config
    knobs = grid.scored_knobs(config)
    assert not any(k.startswith("alert_") for k in knobs)
    assert len(cands) == 1 + 2 * len(knobs)
    for cand in cands[1:]:
        changed = [k for k in knobs if getattr(cand.config, k) != getattr(config, k)]
        assert changed in ([cand.knob], [])      # an int knob may round back to itself
        value = getattr(cand.config, cand.knob)
        assert isinstance(value, type(getattr(config, cand.knob)))
        if cand.knob.endswith("_alpha"):
            assert 0 < value <= 1


def _three_categories(tmp_path) -> list[datetime]:
    """calm (2 files) and busy (1) with one surge each, none (1) without: a NAB-format
    corpus under ``tmp_path/data`` with ``tmp_path/windows.json``."""
    import orjson

    rng = random.Random(9)
    t0 = datetime(2024, 1, 1)
    ts = [t0 + timedelta(minutes=5 * i) for i in range(1200)]
    windows = {}
    for category, kinds in (("calm", ("a", "b")), ("busy", ("a",)), ("none", ("a",))):
        for kind in kinds:
            values = [50 + 10 * math.sin(i / 20) + rng.gauss(0, 1) for i in range(1200)]
            if category != "none":
                for i in range(900, 950):
                    values[i] += 60
                windows[f"{category}/{kind}.csv"] = [
                    [f"{ts[880]:%Y-%m-%d %H:%M:%S}", f"{ts[960]:%Y-%m-%d %H:%M:%S}"]]
            folder = tmp_path / "data" / category
            folder.mkdir(parents=True, exist_ok=True)
            (folder / f"{kind}.csv").write_text("timestamp,value\n" + "".join(
                f"{t:%Y-%m-%d %H:%M:%S},{v:.3f}\n" for t, v in zip(ts, values, strict=True)))
    (tmp_path / "windows.json").write_bytes(orjson.dumps(windows))
    return ts


def test_leave_one_out_command_reports_every_category_and_ends_with_json(
        tmp_path, capsys) -> None:
    import orjson

    from rapport.profile.evaluation import loo

    _three_categories(tmp_path)
    out = loo.run(tmp_path / "data", tmp_path / "windows.json", workers=1, factors=(2.0,))
    last = orjson.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert last == orjson.loads(orjson.dumps(out))
    assert set(last["leave_one_out"]) == {"calm", "busy", "none"}
    assert last["categories"]["none"] is None and last["categories"]["calm"] > 50
    assert last["leave_one_out"]["none"]["carried"] is None
    assert set(last["sensitivity"]) == set(grid.scored_knobs(DetectorConfig()))
    assert "published" not in last


def test_published_detectors_are_scored_alike_and_incomplete_ones_skipped(
        tmp_path, capsys) -> None:
    from rapport.profile.evaluation import loo

    ts = _three_categories(tmp_path)
    files = ["calm/a.csv", "calm/b.csv", "busy/a.csv", "none/a.csv"]

    def write(detector: str, score_at, names=files) -> None:
        for name in names:
            category, file = name.split("/")
            folder = tmp_path / "results" / detector / category
            folder.mkdir(parents=True, exist_ok=True)
            (folder / f"{detector}_{file}").write_text(
                "timestamp,value,anomaly_score,label\n" + "".join(
                    f"{t:%Y-%m-%d %H:%M:%S},0,{score_at(name, i)},0\n"
                    for i, t in enumerate(ts)))

    # Fires at each window's first point: NAB's perfect detector. "noisy" also fires
    # at 300 in every file: a false detection, as is everything in the file without windows.
    write("perfect", lambda name, i: 1.0 if i == 880 and not name.startswith("none") else 0.0)
    write("noisy", lambda name, i: 1.0 if i in (300, 880) else 0.0)
    write("partial", lambda name, i: 0.0, names=files[:2])
    out = loo.run(tmp_path / "data", tmp_path / "windows.json", workers=1, factors=(2.0,),
                  published=tmp_path / "results")
    text = capsys.readouterr().out
    assert "Not covering every file (skipped): partial" in text
    found = out["published"]
    assert set(found) == {"rapport (default)", "perfect", "noisy"}
    assert found["perfect"]["own"] == {"busy": 100.0, "calm": 100.0, "none": None}
    assert found["perfect"]["carried"]["calm"] == 100.0
    assert found["perfect"]["false_positives"]["none"] == 0
    assert found["perfect"]["full"] == 100.0
    assert found["noisy"]["false_positives"]["none"] == 2   # 300 and 880: no window there
    assert found["noisy"]["own"]["calm"] < 100.0


def test_thinning_drops_about_that_share_but_never_a_window_limit() -> None:
    from rapport.profile.demand.evaluate import Series, thinned

    t0 = datetime(2024, 1, 1)
    ts = [t0 + timedelta(minutes=5 * i) for i in range(2000)]
    corpus = [Series("a/x.csv", ts, [float(i) for i in range(2000)])]
    windows = {"a/x.csv": [(ts[500], ts[700])]}
    out = thinned(corpus, windows, 0.2, seed=3)[0]
    assert ts[500] in out.timestamps and ts[700] in out.timestamps
    assert 1500 < len(out.timestamps) < 1700
    assert out.values == [float(ts.index(t)) for t in out.timestamps]  # rows stay paired
    assert thinned(corpus, windows, 0.2, seed=3)[0] == out           # one seed, one corpus
    assert thinned(corpus, windows, 0.0, seed=3) is corpus


def test_short_cuts_hold_each_window_past_their_probation() -> None:
    from rapport.profile.demand.evaluate import Series, cut_short

    t0 = datetime(2024, 1, 1)
    ts = [t0 + timedelta(minutes=5 * i) for i in range(6000)]
    corpus = [Series("a/x.csv", ts, [float(i) for i in range(6000)]),
              Series("b/quiet.csv", ts[:3000], [1.0] * 3000)]
    windows = {"a/x.csv": [(ts[2000], ts[2100]), (ts[4000], ts[4100])]}
    cuts, kept = cut_short(corpus, windows, 1600, seed=5)
    assert [c.name for c in cuts] == ["a/x.csv#0", "a/x.csv#1", "b/quiet.csv#0"]
    for cut in cuts:
        assert len(cut.values) == 1600
        first = int(cut.values[0]) if cut.name.startswith("a/") else 0
        assert cut.timestamps == ts[first:first + 1600] or cut.name.startswith("b/")
    for k, (a, b) in enumerate(windows["a/x.csv"]):
        cut = cuts[k]
        assert (a, b) in kept[cut.name]                        # 300-1,100 points in
        assert 300 <= cut.timestamps.index(a) <= 1100
        assert all(cut.timestamps.index(w) >= 240 for w, _ in kept[cut.name])
    assert kept["b/quiet.csv#0"] == []
    assert cut_short(corpus, windows, 1600, seed=5) == (cuts, kept)   # one seed, one set
