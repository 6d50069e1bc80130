"""``rapport eval-spikes --leave-one-out``: per-category scores, leave-one-category-out and
knob sensitivity of the demand detector on a NAB-format corpus.

A category is scored as NAB scores a corpus: the threshold that maximises that category's
own summed score. Leave-one-category-out picks, among the grid's candidates, the one
with the best mean per-category score on the other categories, and scores the held-out
one with it: with its own best threshold (what a check on unseen categories with NAB's
optimiser gives) and with the threshold optimised on the training files (what a
deployment that cannot tune on the new data gets). The last line printed is JSON.
"""

from __future__ import annotations

import time
from pathlib import Path

import numpy as np
import orjson
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TimeElapsedColumn
from rich.table import Table

from rapport.profile.demand import nab
from rapport.profile.demand.detector import DetectorConfig
from rapport.profile.demand.evaluate import load_corpus, load_windows

from . import folds, grid, sweeps
from . import published as nab_published

STANDARD = nab.PROFILES[0]


def _fmt(x: float | None) -> str:
    return "n/a" if x is None else f"{x:.1f}"


class Scorer:
    """Scores of the grid's candidates on groups of files, from the sweeps made once."""

    def __init__(self, names: list[str], timestamps: list[list], windows: dict) -> None:
        self.names = names
        self.category = [n.split("/", 1)[0] for n in names]
        self.categories = sorted(set(self.category))
        self.sweeps = {cost.name: [sweeps.prepare(n, ts, windows.get(n, []), cost)
                                   for n, ts in zip(names, timestamps, strict=True)]
                       for cost in nab.PROFILES}

    def files(self, categories: list[str]) -> list[int]:
        return [i for i, c in enumerate(self.category) if c in categories]

    def best(self, scores: list[np.ndarray], categories: list[str],
             cost: nab.CostProfile = STANDARD) -> sweeps.Result:
        idx = self.files(categories)
        return sweeps.best_threshold([self.sweeps[cost.name][i] for i in idx],
                                     [scores[i] for i in idx], cost)

    def at(self, scores: list[np.ndarray], categories: list[str],
           threshold: float) -> sweeps.Result:
        idx = self.files(categories)
        return sweeps.at_threshold([self.sweeps[STANDARD.name][i] for i in idx],
                                   [scores[i] for i in idx], STANDARD, threshold)


def run(data: Path, windows_file: Path, config: DetectorConfig | None = None,
        workers: int | None = None, factors: tuple[float, ...] = grid.FACTORS,
        published: Path | None = None) -> dict:
    console = Console(width=130)
    config = config or DetectorConfig()
    corpus = load_corpus(data)
    if not corpus:
        raise SystemExit(f"no CSV files under {data}")
    windows = load_windows(windows_file)
    started = time.perf_counter()
    scorer = Scorer([s.name for s in corpus], [s.timestamps for s in corpus], windows)
    cats = scorer.categories
    cands = grid.candidates(config, factors)
    with Progress("[progress.description]{task.description}", BarColumn(),
                  MofNCompleteColumn(), TimeElapsedColumn(), console=Console(stderr=True),
                  transient=True) as bar:
        task = bar.add_task(f"{len(cands)} configurations x {len(corpus)} files",
                            total=len(cands) * sum(len(s.values) for s in corpus))
        g = grid.compute(corpus, cands, workers, lambda n: bar.advance(task, n))
    points = sum(len(s.values) for s in corpus)

    # Every candidate's standard score per category and on the whole corpus.
    table = [{c: scorer.best(s, [c]).normalised for c in cats} for s in g.scores]
    full = [scorer.best(s, cats).normalised or 0.0 for s in g.scores]
    default = g.scores[0]

    t = Table(title=f"Per category (standard profile, each with its own best threshold), "
                    f"{len(corpus)} files")
    for col in ("category", "files", "windows", "score", "threshold", "TP", "FP"):
        t.add_column(col)
    for c in cats:
        r = scorer.best(default, [c])
        t.add_row(c, str(len(scorer.files([c]))), str(sum(len(windows.get(n, []))
                  for n in scorer.names if n.startswith(c + "/"))),
                  _fmt(r.normalised), f"{r.threshold:.4f}", str(r.tp), str(r.fp))
    console.print(t)

    t = Table(title="Full development set (one threshold per profile)")
    for col in ("profile", "score", "threshold", "TP", "FP"):
        t.add_column(col)
    dev = {}
    for cost in nab.PROFILES:
        r = scorer.best(default, cats, cost)
        dev[cost.name] = round(r.normalised or 0.0, 2)
        t.add_row(cost.name, _fmt(r.normalised), f"{r.threshold:.4f}", str(r.tp), str(r.fp))
    console.print(t)

    # Leave one category out.
    chosen = folds.folds(table, cats)
    t = Table(title="Leave one category out (tuned on the other three, standard profile)")
    for col in ("held out", "chosen configuration", "training mean", "own threshold",
                "training threshold", "score there", "FP there"):
        t.add_column(col)
    loo = {}
    for held, c in chosen.items():
        training = [x for x in cats if x != held]
        thr = scorer.best(g.scores[c], training).threshold
        carried = scorer.at(g.scores[c], [held], thr)
        own = table[c][held]
        name = "default" if cands[c].knob is None else f"{cands[c].knob} x{cands[c].factor}"
        loo[held] = {"config": name, "own_threshold": None if own is None else round(own, 2),
                     "training_threshold": round(thr, 4),
                     "carried": None if carried.normalised is None
                     else round(carried.normalised, 2), "false_positives": carried.fp}
        t.add_row(held, name, _fmt(folds.training_mean(table[c], training)), _fmt(own),
                  f"{thr:.4f}", _fmt(carried.normalised), str(carried.fp))
    console.print(t)
    console.print("A category without windows (artificialNoAnomaly) has no normalised score "
                  "(perfect = null): judge it by its false detections at the training "
                  "threshold.", style="dim")

    # Sensitivity.
    moves = [folds.Moved(cd.knob, cd.factor, getattr(cd.config, cd.knob), full[i],
                         folds.worst_of(table[i])) for i, cd in enumerate(cands) if cd.knob]
    values = {k: getattr(config, k) for k in grid.scored_knobs(config)}
    rows = folds.sensitivity(values, full[0], folds.worst_of(table[0]), moves)
    t = Table(title="Knob sensitivity: full dev standard score (lowest category score) "
                    "with the knob moved")
    shown = sorted({1.0, *factors})
    for col in ("knob", "value", *(f"x{f}" for f in shown), "swing"):
        t.add_column(col)
    for r in rows:
        t.add_row(r.knob, f"{r.value:g}", *(
            f"{r.full[f]:.1f} ({r.worst[f]:.1f})" if f in r.full else "" for f in shown),
            f"{r.swing:.1f}")
    console.print(t)
    compared = None
    if published is not None:
        compared = _published_table(console, published, scorer,
                                    [len(s.values) for s in corpus], default)
    pps = points / g.default_seconds if g.default_seconds else 0.0
    console.print(f"{len(cands)} configurations x {points:,} points in "
                  f"{time.perf_counter() - started:.0f} s; default detector {pps:,.0f} "
                  "points/s (one core, detector only)")
    out = {"categories": {c: None if table[0][c] is None else round(table[0][c], 2)
                          for c in cats},
           "full": dev, "leave_one_out": loo, "points_per_s": round(pps),
           "sensitivity": {r.knob: round(r.swing, 2) for r in rows}}
    if compared is not None:
        out["published"] = compared
    print(orjson.dumps(out).decode())
    return out


def _published_table(console: Console, results: Path, scorer: Scorer, lengths: list[int],
                     ours: list[np.ndarray]) -> dict:
    """Our default detector next to every detector of a NAB ``results`` folder, scored
    alike (one configuration each: the carried threshold is optimised on the others)."""
    found, missing = nab_published.compare(results, scorer, lengths)
    rows = [nab_published.figures("rapport (default)", scorer, ours), *found]
    cats = scorer.categories
    t = Table(title="Next to NAB's published detectors (standard profile; per category: own "
                    "threshold / threshold of the other categories)")
    for col in ("detector", *cats, "full"):
        t.add_column(col)
    for f in rows:
        t.add_row(f.name, *(f"{_fmt(f.own[c])} / {_fmt(f.carried[c])}"
                            if f.own[c] is not None else f"{f.false_positives[c]} FP"
                            for c in cats), _fmt(f.full))
    console.print(t)
    if missing:
        console.print(f"Not covering every file (skipped): {', '.join(missing)}", style="dim")
    return {f.name: {"own": {c: None if v is None else round(v, 2) for c, v in f.own.items()},
                     "carried": {c: None if v is None else round(v, 2)
                                 for c, v in f.carried.items()},
                     "false_positives": f.false_positives,
                     "full": None if f.full is None else round(f.full, 2)} for f in rows}
