"""``rapport eval-spikes --explain``: where the NAB score is won and lost, window by window.

Each category is scored at its own best threshold (as NAB scores a corpus); then every
labelled window is either found, by the first detection in it (which view made it and what
NAB's sigmoid paid for it: 1 at the window's start, 0 at its end), or missed, and every
detection outside a window is a false one (what it cost, and which view made it). The
score is normalised over the windows, so one missed window of a category with ``w`` of
them costs about ``200 / w`` points, one false detection ``11 / w``. The attribution is a
plain function of scores, views and windows, tested without a detector.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

import orjson
from rich.console import Console
from rich.progress import Progress
from rich.table import Table

from rapport.profile.demand import nab
from rapport.profile.demand.detector import DetectorConfig
from rapport.profile.demand.evaluate import Series, Windows, load_corpus, load_windows, readings

STANDARD = nab.PROFILES[0]


@dataclass(frozen=True)
class Found:
    window: str                 # file|index of the window's first point
    view: str | None            # None: missed
    paid: float                 # NAB's weight of the first detection in it (-1: missed)


@dataclass
class Explained:
    """One file (or a category: files added up) at one threshold."""

    windows: list[Found] = field(default_factory=list)
    false_views: Counter[str] = field(default_factory=Counter)
    false_cost: float = 0.0     # what the false detections cost, as NAB weighs them

    def add(self, other: Explained) -> None:
        self.windows += other.windows
        self.false_views.update(other.false_views)
        self.false_cost += other.false_cost

    @property
    def found_views(self) -> Counter[str]:
        return Counter(f.view for f in self.windows if f.view is not None)

    @property
    def missed(self) -> list[Found]:
        return [f for f in self.windows if f.view is None]

    @property
    def late(self) -> float:
        """What the found windows lost to detections after their start."""
        return sum(1.0 - f.paid for f in self.windows if f.view is not None)


def attribute(name: str, timestamps: Sequence[object], scores: Sequence[float],
              views: Sequence[str | None], windows: list[tuple[object, object]],
              threshold: float, cost: nab.CostProfile = STANDARD) -> Explained:
    """Which view found each window of one file and which made its false detections."""
    points = nab.sweep(name, timestamps, scores, windows, cost)
    first = len(scores) - len(points)          # the points NAB scores follow probation
    out, found = Explained(), {}
    for i, p in enumerate(points):
        if p.anomaly_score < threshold:
            continue
        view = views[first + i] or "?"
        if p.window is None:
            out.false_views[view] += 1
            out.false_cost -= p.sweep_score
        elif p.window not in found:
            found[p.window] = Found(p.window, view, p.sweep_score)
    index = {t: i for i, t in enumerate(timestamps)}
    for a, _ in sorted(windows, key=lambda w: index[w[0]]):
        key = f"{name}|{index[a]}"
        if index[a] >= first:                  # a window inside probation is not scored
            out.windows.append(found.get(key, Found(key, None, -1.0)))
    return out


def explain(corpus: list[Series], windows: Windows,
            runs: dict[str, tuple[list[float], list[str | None]]]
            ) -> dict[str, tuple[float, float | None, Explained]]:
    """For the whole corpus (``"all"``) and per category: the best threshold, the score
    there and what made it. A category without windows has no best threshold (nothing
    detected is perfect, and scores nothing): it is judged at the whole corpus's."""
    def judged(files: list[Series], threshold: float | None
               ) -> tuple[float, float | None, Explained]:
        best = nab.score_corpus({s.name: (s.timestamps, runs[s.name][0]) for s in files},
                                windows, STANDARD)
        total = Explained()
        at = best.threshold if threshold is None else threshold
        for s in files:
            total.add(attribute(s.name, s.timestamps, *runs[s.name],
                                windows.get(s.name, []), at))
        return at, (best.normalised if best.perfect != best.null else None), total

    whole = judged(corpus, None)
    out = {}
    for category in sorted({s.name.split("/", 1)[0] for s in corpus}):
        mine = [s for s in corpus if s.name.split("/", 1)[0] == category]
        windowless = not any(windows.get(s.name) for s in mine)
        out[category] = judged(mine, whole[0] if windowless else None)
    out["all"] = whole
    return out


def _views(counts: Counter[str]) -> str:
    return ", ".join(f"{v} {n}" for v, n in counts.most_common()) or "-"


def run(data: Path, windows_file: Path, config: DetectorConfig | None = None) -> dict:
    console = Console(width=140)
    config = config or DetectorConfig()
    corpus, windows = load_corpus(data), load_windows(windows_file)
    if not corpus:
        raise SystemExit(f"no CSV files under {data}")
    runs = {}
    with Progress(console=Console(stderr=True), transient=True) as progress:
        task = progress.add_task("detecting", total=sum(len(s.values) for s in corpus))
        for s in corpus:
            got = readings(s, config)
            runs[s.name] = ([r.score for r in got], [r.view for r in got])
            progress.advance(task, len(s.values))
    result = explain(corpus, windows, runs)
    t = Table(title="Where the standard score is won and lost, each category at its own best "
                    "threshold (one without windows at the whole set's); NAB pays 1 for a "
                    "detection at a window's start, 0 at its end")
    for col in ("category", "score", "threshold", "windows", "found by", "missed",
                "lost to lateness", "false detections by", "their cost"):
        t.add_column(col)
    for category, (threshold, score, e) in result.items():
        t.add_row(category, "n/a" if score is None else f"{score:.1f}", f"{threshold:.4f}",
                  str(len(e.windows)),
                  _views(e.found_views), str(len(e.missed)), f"{e.late:.2f}",
                  _views(e.false_views), f"{e.false_cost:.2f}")
    console.print(t)
    missed = [f.window for c, (_, _, e) in result.items() if c != "all" for f in e.missed]
    if missed:
        console.print("Missed windows (file|first point): " + "; ".join(missed))
    out = {c: {"threshold": round(thr, 4), "score": None if score is None else round(score, 2),
               "windows": len(e.windows), "found_by": dict(e.found_views),
               "missed": [f.window for f in e.missed], "late": round(e.late, 3),
               "false_by": dict(e.false_views), "false_cost": round(e.false_cost, 3)}
           for c, (thr, score, e) in result.items()}
    print(orjson.dumps(out).decode())
    return out
