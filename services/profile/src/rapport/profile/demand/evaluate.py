"""``rapport eval-spikes``: the stream's detector over a NAB-format corpus, scored as NAB does.

Every CSV (``timestamp,value``) under ``--data`` is fed point by point to a fresh
:class:`SpikeDetector` (the one the demand stream uses, with its one configuration), the
anomaly scores are written in NAB's results format when ``--results`` is given, and the
corpus is scored for NAB's three cost profiles by :mod:`.nab`. The last line printed is
JSON with the three normalised scores. ``--leave-one-out`` (per-category scores,
leave-one-category-out, knob sensitivity) lives in :mod:`rapport.profile.evaluation`.
"""

from __future__ import annotations

import csv
import itertools
import random
import time
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

import orjson
from rich.console import Console
from rich.progress import Progress
from rich.table import Table

from . import nab
from .detector import DetectorConfig, Reading, SpikeDetector


@dataclass(frozen=True)
class Series:
    name: str                      # relative path, as the windows file names it
    timestamps: list[datetime]
    values: list[float]


Windows = dict[str, list[tuple[datetime, datetime]]]   # file name: its labelled windows


def parse_time(text: str) -> datetime:
    """NAB's timestamps carry no zone: they are read as UTC, whatever the machine's zone."""
    return datetime.fromisoformat(text.strip()).replace(tzinfo=UTC)


def load_corpus(data: Path) -> list[Series]:
    out = []
    for path in sorted(data.rglob("*.csv")):
        with path.open(newline="") as f:
            rows = list(csv.DictReader(f))
        try:
            out.append(Series(path.relative_to(data).as_posix(),
                              [parse_time(r["timestamp"]) for r in rows],
                              [float(r["value"]) for r in rows]))
        except (KeyError, ValueError) as exc:
            raise ValueError(f"{path}: not timestamp,value rows ({exc})") from exc
    return out


def load_windows(path: Path) -> Windows:
    raw = orjson.loads(path.read_bytes())
    return {name: [(parse_time(a), parse_time(b)) for a, b in limits]
            for name, limits in raw.items()}


def step_of(timestamps: list[datetime]) -> float:
    """The series' sampling step: the most common gap between points."""
    gaps: dict[float, int] = {}
    for a, b in itertools.pairwise(timestamps):
        gap = (b - a).total_seconds()
        gaps[gap] = gaps.get(gap, 0) + 1
    return max(gaps, key=lambda g: gaps[g]) if gaps else 300.0


def readings(series: Series, config: DetectorConfig) -> list[Reading]:
    """What the detector makes of each point, seeing the points one at a time."""
    detector = SpikeDetector(step_s=step_of(series.timestamps), config=config)
    return [detector.update(t.timestamp(), v)
            for t, v in zip(series.timestamps, series.values, strict=True)]


def detect(series: Series, config: DetectorConfig) -> list[float]:
    """Scores the detector gives each point."""
    return [r.score for r in readings(series, config)]


def score_all(corpus: list[Series], scores: dict[str, list[float]],
              windows: Windows) -> list[nab.ProfileResult]:
    files = {s.name: (s.timestamps, scores[s.name]) for s in corpus}
    return [nab.score_corpus(files, windows, cost) for cost in nab.PROFILES]


def write_results(results: Path, series: Series, scores: list[float],
                  windows: list[tuple[datetime, datetime]]) -> None:
    target = results / Path(series.name).parent / f"rapport_{Path(series.name).name}"
    target.parent.mkdir(parents=True, exist_ok=True)
    with target.open("w", newline="") as f:
        out = csv.writer(f)
        out.writerow(["timestamp", "value", "anomaly_score", "label"])
        for t, v, s in zip(series.timestamps, series.values, scores, strict=True):
            label = int(any(a <= t <= b for a, b in windows))
            out.writerow([t.strftime("%Y-%m-%d %H:%M:%S"), repr(v), f"{s:.6f}", label])


def thinned(corpus: list[Series], windows: Windows,
            share: float, seed: int) -> list[Series]:
    """Every file with ``share`` of its points dropped at random (never a window's limits,
    which NAB needs): irregular clocks, as in NAB's realTraffic, on any corpus."""
    if share <= 0:
        return corpus
    rng = random.Random(seed)
    out = []
    for s in corpus:
        keep = {t for limits in windows.get(s.name, []) for t in limits}
        rows = [(t, v) for t, v in zip(s.timestamps, s.values, strict=True)
                if t in keep or rng.random() >= share]
        out.append(Series(s.name, [t for t, _ in rows], [v for _, v in rows]))
    return out


def cut_short(corpus: list[Series], windows: Windows, length: int,
              seed: int) -> tuple[list[Series], Windows]:
    """Short series cut from a corpus of long ones, as NAB's realAdExchange and realTraffic
    files are (1,500-2,500 points): per window a cut of ``length`` points that starts 300
    to 1,100 points before it (a random file-long stretch for a file without windows),
    keeping the windows that lie past the cut's probation and end inside it. A detector
    that needs a long warm-up misses what short files hold; the full files do not show it."""
    rng = random.Random(seed)
    cuts: list[Series] = []
    kept: Windows = {}
    for s in corpus:
        index = {t: i for i, t in enumerate(s.timestamps)}
        spans = [(index[a], index[b]) for a, b in windows.get(s.name, [])]
        starts = [max(0, a - rng.randint(300, 1100)) for a, _ in spans] or [
            rng.randint(0, max(0, len(s.values) - length))]
        for k, start in enumerate(starts):
            end = min(len(s.values), start + length)
            name = f"{s.name}#{k}"
            cuts.append(Series(name, s.timestamps[start:end], s.values[start:end]))
            first = start + nab.probation_length(end - start)
            kept[name] = [(s.timestamps[a], s.timestamps[b]) for a, b in spans
                          if a >= first and b < end]
    return cuts, kept


def run(data: Path, windows_file: Path, results: Path | None,
        config: DetectorConfig | None = None, drop: float = 0.0,
        seed: int = 1, cut: int = 0) -> dict[str, float]:
    console = Console(width=120)
    config = config or DetectorConfig()
    windows = load_windows(windows_file)
    corpus = thinned(load_corpus(data), windows, drop, seed)
    if cut and corpus:
        corpus, windows = cut_short(corpus, windows, cut, seed)
    if not corpus:
        raise SystemExit(f"no CSV files under {data}")
    scores: dict[str, list[float]] = {}
    points, spent = 0, 0.0
    with Progress(console=Console(stderr=True), transient=True) as progress:
        task = progress.add_task("detecting", total=sum(len(s.values) for s in corpus))
        for series in corpus:
            started = time.perf_counter()
            scores[series.name] = detect(series, config)
            spent += time.perf_counter() - started
            points += len(series.values)
            progress.advance(task, len(series.values))
            if results is not None:
                write_results(results, series, scores[series.name],
                              windows.get(series.name, []))
    outcome = score_all(corpus, scores, windows)
    dropped = f", {drop:.0%} of the points dropped (seed {seed})" if drop > 0 else ""
    if cut:
        dropped += f", cut to {cut:,} points around each window (seed {seed})"
    table = Table(title=f"NAB score of the demand detector, {len(corpus)} files, "
                        f"{sum(len(w) for w in windows.values())} windows{dropped}")
    for col in ("profile", "score", "threshold", "raw", "null", "perfect",
                "detections in windows", "false positives"):
        table.add_column(col)
    for r in outcome:
        table.add_row(r.profile, f"{r.normalised:.1f}", f"{r.threshold:.4f}", f"{r.raw:.2f}",
                      f"{r.null:.2f}", f"{r.perfect:.2f}", str(r.tp), str(r.fp))
    console.print(table)
    console.print(f"{points:,} points in {spent:.1f} s: {points / spent:,.0f} points/s "
                  "(one core, detector only)")
    final = {r.profile: round(r.normalised, 2) for r in outcome}
    print(orjson.dumps(final).decode())
    return final
