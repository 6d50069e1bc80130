"""``rapport eval-spikes --explain`` (:mod:`rapport.profile.evaluation.explain`): which view
found each window, which were missed, what false detections and lateness cost."""

from __future__ import annotations

import random
from datetime import datetime, timedelta

import orjson
import pytest

from rapport.profile.demand import nab
from rapport.profile.demand.evaluate import Series
from rapport.profile.evaluation.explain import attribute, explain

T0 = datetime(2024, 1, 1)
TS = [T0 + timedelta(minutes=5 * i) for i in range(1000)]     # probation: 150 points


def test_each_window_is_found_by_its_first_detection_or_missed():
    scores, views = [0.0] * 1000, [None] * 1000
    for i, s, v in ((100, 0.9, "territory"),    # in probation: not scored
                    (300, 0.4, "error"),         # under the threshold
                    (520, 0.6, "shape"), (540, 0.9, "error"),   # the window's first: shape
                    (800, 0.7, "error")):        # false, long after the window
        scores[i], views[i] = s, v
    windows = [(TS[500], TS[599]), (TS[900], TS[950]), (TS[120], TS[140])]
    e = attribute("f.csv", TS, scores, views, windows, threshold=0.5)
    assert [(f.window, f.view) for f in e.windows] == [("f.csv|500", "shape"),
                                                       ("f.csv|900", None)]
    paid = nab.scaled_sigmoid(-(599 - 520 + 1) / 100) / nab.MAX_TP
    assert e.windows[0].paid == pytest.approx(paid)
    assert e.late == pytest.approx(1 - paid)
    assert [f.window for f in e.missed] == ["f.csv|900"]
    assert e.false_views == {"error": 1}
    assert e.false_cost == pytest.approx(0.11, abs=1e-3)   # 2 window widths after it
    assert e.found_views == {"shape": 1}


def test_a_category_without_windows_is_judged_at_the_whole_corpus_threshold():
    quiet, spiky = [0.0] * 1000, [0.0] * 1000
    quiet[700] = 0.8                                  # a false detection, windowless file
    spiky[520] = 0.8                                  # a hit
    corpus = [Series("calm/a.csv", TS, [1.0] * 1000), Series("busy/b.csv", TS, [1.0] * 1000)]
    runs = {"calm/a.csv": (quiet, [None] * 700 + ["ground"] + [None] * 299),
            "busy/b.csv": (spiky, [None] * 520 + ["territory"] + [None] * 479)}
    out = explain(corpus, {"busy/b.csv": [(TS[500], TS[599])]}, runs)
    assert set(out) == {"busy", "calm", "all"}
    threshold, score, calm = out["calm"]
    assert threshold == out["all"][0] == 0.8 and score is None
    assert calm.false_views == {"ground": 1} and calm.windows == []
    assert out["busy"][2].found_views == {"territory": 1}
    assert out["all"][2].false_views == {"ground": 1}


def test_eval_spikes_explain_prints_json_last(tmp_path, capsys):
    from rapport.shared.cli import main

    rng = random.Random(8)
    data = tmp_path / "data" / "synthetic"
    data.mkdir(parents=True)
    ts = [T0 + timedelta(minutes=5 * i) for i in range(3000)]
    values = [100 + rng.gauss(0, 3) for _ in range(3000)]
    for i in range(2200, 2300):
        values[i] *= 3
    (data / "surge.csv").write_text("timestamp,value\n" + "".join(
        f"{t:%Y-%m-%d %H:%M:%S},{v:.3f}\n" for t, v in zip(ts, values, strict=True)))
    windows = tmp_path / "windows.json"
    windows.write_bytes(orjson.dumps({"synthetic/surge.csv": [
        [f"{ts[2150]:%Y-%m-%d %H:%M:%S}", f"{ts[2350]:%Y-%m-%d %H:%M:%S}"]]}))
    assert main(["eval-spikes", "--data", str(tmp_path / "data"), "--windows", str(windows),
                 "--explain"]) == 0
    out = orjson.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert out["synthetic"]["windows"] == 1 and out["synthetic"]["missed"] == []
    assert out["synthetic"]["found_by"] == {"territory": 1}
