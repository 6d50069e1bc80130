"""Synthetic customers for ``rapport bench scoring``: purchase histories from the BG/NBD
process (purchase rate lambda ~ Gamma(r, alpha), dropout after each repeat purchase with
p ~ Beta(a, b)) with Gamma-Gamma spend, full profiles as the profile service keeps them,
written straight to Redis (a bench-only shortcut past ingest and profile), and the
population sketches built from them."""

from __future__ import annotations

import multiprocessing
import random
import time
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

import numpy as np
from rich.console import Console
from rich.progress import Progress

from rapport.shared import keys, redis_store, topics
from rapport.shared.customers import encode_sketches
from rapport.shared.layout import ProfileLayout
from rapport.shared.profiles import CustomerProfile
from rapport.shared.purchases import EPOCH
from rapport.shared.scores import rfm
from rapport.shared.scores.population import METRICS, MetricSketches

console = Console()
CHUNK = 10_000


@dataclass(frozen=True)
class Truth:
    """The generating parameters (the published CDNOW fits: a realistic population)."""

    r: float = 0.243
    alpha: float = 4.414
    a: float = 0.793
    b: float = 2.426
    p: float = 6.25
    q: float = 3.74
    gamma: float = 15.44


TRUTH = Truth()


def as_of_now() -> datetime:
    """The end of yesterday (UTC): every synthetic purchase is on or before it."""
    today = datetime.now(UTC).replace(hour=0, minute=0, second=0, microsecond=0)
    return today


def btyd_histories(n: int, seed: int, end_day: int, cohort_days: int = 730,
                   truth: Truth = TRUTH) -> list[dict[int, float]]:
    """``n`` purchase histories (day -> spend) drawn from BG/NBD and Gamma-Gamma.

    First purchases fall uniformly over the ``cohort_days`` up to ``end_day``; each
    customer then buys at their rate (purchases a Poisson process in weeks) until they
    drop out (with their p, right after a repeat purchase) or the window ends. Several
    purchases on one day are one purchase day, as the profile keeps them."""
    rng = np.random.default_rng(seed)
    first = end_day - rng.integers(0, cohort_days, size=n)
    big_t = (end_day - first) / 7.0  # weeks observed after the first purchase
    lam = rng.gamma(truth.r, 1 / truth.alpha, size=n)
    drop = rng.beta(truth.a, truth.b, size=n)
    nu = rng.gamma(truth.q, 1 / truth.gamma, size=n)
    times: list[list[float]] = [[] for _ in range(n)]
    t = np.zeros(n)
    alive = np.arange(n)
    while alive.size:
        t[alive] += rng.exponential(1.0, size=alive.size) / np.maximum(lam[alive], 1e-12)
        alive = alive[t[alive] <= big_t[alive]]
        for i in alive.tolist():
            times[i].append(float(t[i]))
        alive = alive[rng.random(alive.size) >= drop[alive]]
    out: list[dict[int, float]] = []
    for i in range(n):
        days = [int(first[i])] + [int(first[i]) + min(int(x * 7), int(big_t[i] * 7))
                                  for x in times[i]]
        spend = rng.gamma(truth.p, 1 / nu[i], size=len(days))
        history: dict[int, float] = {}
        for day, value in zip(days, spend.tolist(), strict=True):
            history[day] = round(history.get(day, 0.0) + max(0.01, value), 2)
        out.append(history)
    return out


_REGIONS = ("north", "south", "east", "west")
_PLANS = ("free", "silver", "gold")
_CATEGORIES = ("shoes", "bags", "hats", "shirts", "coats", "socks", "belts")


def synthetic_profile(customer_id: str, days: dict[int, float],
                      rng: random.Random) -> CustomerProfile:
    """A profile as the profile service would have folded it: the purchases, and the
    browsing, email and identity around them (one validation of a plain dict: a
    million of them must be quick to make)."""
    first, last = min(days), max(days)
    midnight = datetime.combine(EPOCH, datetime.min.time(), UTC)
    first_at = midnight + timedelta(days=first, seconds=rng.randrange(8 * 3600, 22 * 3600))
    last_at = max(first_at, midnight + timedelta(days=last,
                                                 seconds=rng.randrange(8 * 3600, 22 * 3600)))
    orders = len(days) + rng.randrange(0, 1 + len(days) // 4)  # a few days had two
    touchpoints = orders * rng.randrange(3, 12) + rng.randrange(2, 20)
    revenue = round(sum(days.values()), 2)
    email = f"{customer_id}@example.com"
    web = touchpoints * 3 // 4
    seen = min(64, touchpoints)
    fingerprints = rng.randbytes(6 * seen).hex()
    return CustomerProfile.model_validate({
        "customer_id": customer_id,
        "identities": [{"type": "user_id", "value": customer_id},
                       {"type": "anonymous_id", "value": f"anon-{customer_id}"},
                       {"type": "email", "value": email}],
        "traits": {"email": email, "region": rng.choice(_REGIONS), "plan": rng.choice(_PLANS),
                   "name": f"Customer {customer_id[-6:]}"},
        "trait_times": {k: first_at for k in ("email", "region", "plan", "name")},
        "metrics": {"touchpoints": touchpoints, "orders": orders, "units": orders * 2,
                    "revenue": revenue, "discounts": round(revenue * 0.03, 2),
                    "emails_delivered": rng.randrange(0, 40),
                    "emails_opened": rng.randrange(0, 10), "offers_viewed": rng.randrange(0, 5),
                    "first_seen": first_at, "last_seen": last_at, "first_order_at": first_at,
                    "last_order_at": last_at},
        "channels": {"web": {"count": web, "last_seen": last_at},
                     "email": {"count": touchpoints - web, "last_seen": last_at}},
        "affinities": {c: {"score": round(rng.uniform(0.5, 20), 4), "as_of": last_at}
                       for c in rng.sample(_CATEGORIES, rng.randrange(1, 4))},
        "consents": {"marketing_email": {"value": rng.random() < 0.7, "at": first_at}},
        "recent_message_ids": [fingerprints[k:k + 12] for k in range(0, 12 * seen, 12)],
        "purchases": {"days": days},
        "updated_at": last_at})


def customer_id(run: str, i: int) -> str:
    return f"{run}-c{i:07d}"


def _write_chunk(job: tuple[str, str, int, int, int, int]) -> tuple[int, np.ndarray]:
    """Worker: build and store customers ``[start, start + count)``; their points
    (last purchase day, purchase days, total spent) for the population sketches."""
    redis_url, run, start, count, seed, end_day = job
    import redis

    client = redis.Redis.from_url(redis_url)
    rng = random.Random(seed * 1_000_003 + start)
    histories = btyd_histories(count, seed * 1_000_003 + start, end_day)
    points = np.empty((count, 3))
    stored: dict[str, bytes] = {}
    for k, days in enumerate(histories):
        cid = customer_id(run, start + k)
        stored[ProfileLayout().profile(cid)] = synthetic_profile(cid, days, rng).to_stored()
        points[k] = (max(days), len(days), sum(days.values()))
    client.mset(stored)
    client.close()
    return count, points


def write_profiles(redis_url: str, run: str, start: int, count: int, end_day: int,
                   seed: int = 7) -> np.ndarray:
    """Store customers ``[start, start + count)`` from two processes; their points."""
    jobs = [(redis_url, run, s, min(CHUNK, start + count - s), seed, end_day)
            for s in range(start, start + count, CHUNK)]
    parts = []
    began = time.perf_counter()
    ctx = multiprocessing.get_context("spawn")
    with ctx.Pool(2) as pool, Progress(console=console, transient=True) as bar:
        task = bar.add_task(f"writing {count:,} profiles", total=count)
        for done, points in pool.imap(_write_chunk, jobs):
            parts.append(points)
            bar.advance(task, done)
    elapsed = time.perf_counter() - began
    console.print(f"  wrote {count:,} profiles in {elapsed:,.1f} s "
                  f"({count / elapsed:,.0f} profiles/s)")
    return np.concatenate(parts) if parts else np.empty((0, 3))


async def write_population(redis_url: str, points: np.ndarray, seed: int = 7) -> None:
    """The population sketches of these points, spread over the profile-updates
    partitions as the scoring consumer keeps them (value: what was spent, a bench
    shortcut for profit so far + expected profit)."""
    rng = np.random.default_rng(seed)
    partition = rng.integers(0, topics.PROFILE_UPDATES.partitions, size=len(points))
    redis = redis_store.connect(redis_url)
    try:
        for part in range(topics.PROFILE_UPDATES.partitions):
            mine = points[partition == part]
            sketches = {m: MetricSketches() for m in METRICS}
            for column, metric in ((0, rfm.RECENCY), (1, rfm.FREQUENCY), (2, rfm.MONETARY),
                                   (2, rfm.VALUE)):
                sketch = sketches[metric].added
                for v in mine[:, column].tolist():
                    sketch.update(v)
            await redis.hset(keys.population_sketches(part), mapping=encode_sketches(sketches))
    finally:
        await redis.aclose()


# --- score reads ----------------------------------------------------------------------
