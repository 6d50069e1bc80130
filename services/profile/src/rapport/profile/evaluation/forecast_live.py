"""``rapport eval-forecast --live``: the forecasts of the running system, on its own live
demand series.

Simulated customers (``rapport.shared.simulate``) shop through ingest over the last few
days of event time, more at lunch and in the evening, more at weekends; the profile
service counts their demand into buckets and its closer feeds every tracked series'
forecaster, which scores itself as it goes (what it forecast an hour and a day ahead
against what came, and against the seasonal-naive forecast). Once every bucket is
closed, the service's own figures are read from ``GET /v1/demand/forecasts/quality``.
"""

from __future__ import annotations

import asyncio
import math
import random
import time
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

import httpx
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TimeElapsedColumn
from rich.table import Table

from rapport.shared.simulate import Population

WRITE_KEY = "dev-write-key"
OPS = {"Authorization": "Bearer dev-ops"}
BUCKET_S = 300
DIMENSIONS = ("total", "category", "region", "channel", "segment", "product")


def intensity(at: float) -> float:
    """Relative shopping activity at epoch second ``at``: night low, a lunch and a larger
    evening peak, weekends a third busier."""
    hour = (at % 86400) / 3600
    day = 0.25 + 0.8 * math.exp(-((hour - 12.5) / 2.0) ** 2) \
        + 1.2 * math.exp(-((hour - 20.0) / 2.5) ** 2)
    weekend = ((at // 86400) + 3) % 7 >= 5       # 1970-01-01 was a Thursday
    return day * (1.33 if weekend else 1.0)


def poisson(rng: random.Random, lam: float) -> int:
    """A Poisson draw (Knuth's method: fine for the small means of simulated buckets)."""
    limit, k, p = math.exp(-lam), 0, 1.0
    while True:
        p *= rng.random()
        if p <= limit:
            return k
        k += 1


def journeys(days: float, per_bucket: float, seed: int, end: float):
    """(bucket start, messages) for every bucket of the last ``days`` before ``end``."""
    rng = random.Random(seed)
    population = Population(customers=2000, seed=seed)
    start = (int(end) // BUCKET_S) * BUCKET_S - int(days * 86400)
    for bucket in range(start, int(end) - BUCKET_S, BUCKET_S):
        times = sorted(bucket + rng.uniform(0, BUCKET_S)
                       for _ in range(poisson(rng, per_bucket * intensity(bucket))))
        messages = []
        for t in times:
            messages += population.journey(datetime.fromtimestamp(t, UTC))
        yield bucket, messages


async def _post(http: httpx.AsyncClient, batch: list[dict[str, Any]]) -> None:
    while True:
        resp = await http.post("/v1/batch", json={"batch": batch,
                                                  "sentAt": datetime.now(UTC).isoformat()})
        if resp.status_code != 503:
            resp.raise_for_status()
            return
        await asyncio.sleep(float(resp.headers.get("Retry-After", "1")))


async def run(urls: dict[str, str], *, days: float, per_bucket: float, seed: int,
              say: Callable[[str], None]) -> dict[str, dict[str, Any]]:
    """Send the simulated days, wait until they are closed, return the quality by
    dimension (and ``all``)."""
    end = time.time()
    buckets = int(days * 86400 / BUCKET_S)
    sent = 0
    async with httpx.AsyncClient(base_url=urls["ingest"], auth=(WRITE_KEY, ""),
                                 timeout=60) as http:
        with Progress("[progress.description]{task.description}", BarColumn(),
                      MofNCompleteColumn(), TimeElapsedColumn(), transient=True) as bar:
            task = bar.add_task("simulated buckets sent", total=buckets)
            batch: list[dict[str, Any]] = []
            for _, messages in journeys(days, per_bucket, seed, end):
                batch += messages
                if len(batch) >= 400:
                    await _post(http, batch)
                    sent += len(batch)
                    batch = []
                bar.advance(task)
            if batch:
                await _post(http, batch)
                sent += len(batch)
    say(f"{sent:,} touchpoints over {days:g} days of event time sent; closing buckets")
    last_bucket = (int(end) // BUCKET_S) * BUCKET_S - 2 * BUCKET_S
    async with httpx.AsyncClient(base_url=urls["profile"], headers=OPS, timeout=60) as http:
        await _closed_through(http, last_bucket - 600, buckets, say)
        late = (await http.get("/v1/demand/status")).json().get("late", {}).get("events", 0)
        say(f"{late:,} of {sent:,} touchpoints came too late to be counted (the clock "
            "had passed their bucket)")
        out = {}
        for dimension in (None, *DIMENSIONS):
            params = {} if dimension is None else {"dimension": dimension}
            resp = await http.get("/v1/demand/forecasts/quality", params=params)
            resp.raise_for_status()
            out[dimension or "all"] = resp.json()
    return out


async def _closed_through(http: httpx.AsyncClient, target: float, buckets: int,
                          say: Callable[[str], None], timeout: float = 1800) -> None:
    deadline = time.monotonic() + timeout
    with Progress("[progress.description]{task.description}", BarColumn(),
                  MofNCompleteColumn(), TimeElapsedColumn(), transient=True) as bar:
        task = bar.add_task("buckets closed", total=buckets)
        while time.monotonic() < deadline:
            body = (await http.get("/v1/demand/status")).json()
            closed = body.get("closed_through")
            if closed is not None:
                at = datetime.fromisoformat(closed).timestamp()
                bar.update(task, completed=buckets - max(0, (target - at) / BUCKET_S))
                if at >= target:
                    return
            await asyncio.sleep(2)
    raise RuntimeError("the demand buckets did not close in time")


def table(found: dict[str, dict[str, Any]], title: str) -> Table:
    out = Table(title=title)
    for col in ("series", "tracked (scored)", "MASE next hour (mean / median)",
                "80% coverage next hour", "MASE next day (mean / median)",
                "80% coverage next day"):
        out.add_column(col, justify="left" if col == "series" else "right")

    def cell(part: dict[str, Any], key: str) -> str:
        """A series is scored once it has a day of history (the naive forecast's)."""
        if key == "coverage":
            return "n/a" if part.get("coverage") is None else f"{part['coverage']:.1%}"
        mean, median = part.get("mase_mean"), part.get("mase_median")
        return "n/a" if mean is None else f"{mean:.3f} / {median:.3f}"

    def sub(part: dict[str, Any], key: str) -> str:
        value = part.get(key)
        if value is None:
            return "n/a"
        return f"{value:.1%}" if key == "coverage" else f"{value:.3f}"

    for name, body in found.items():
        hour, day = body["next_hour"], body["next_day"]
        tracked = f"{body['series']} ({day.get('scored_series', 0)})"
        out.add_row(name, tracked, cell(hour, "mase"), cell(hour, "coverage"),
                    cell(day, "mase"), cell(day, "coverage"),
                    style="bold" if name == "all" else None)
        # Intermittent series (mostly empty buckets) hold 0 in any sensible interval,
        # so they cover more than 80 %: shown apart, so the smooth ones can be judged.
        for kind in ("smooth", "intermittent"):
            h, d = hour.get(kind), day.get(kind)
            if h is None or d is None or not h["series"]:
                continue
            out.add_row(f"  {kind}", f"{h['series']}", sub(h, "mase_mean"),
                        sub(h, "coverage"), sub(d, "mase_mean"), sub(d, "coverage"),
                        style="dim")
    return out
