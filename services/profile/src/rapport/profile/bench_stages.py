"""Freshness per stage for ``rapport bench profile``: the profile service's own
``rapport_profile_freshness_seconds`` histogram, read before and after a load and
turned into quantiles of what that load added (bucket upper bounds, interpolated)."""

from __future__ import annotations

import httpx
from prometheus_client.parser import text_string_to_metric_families

Buckets = dict[str, dict[float, float]]
"""stage -> bucket upper bound (s) -> cumulative count."""


def scrape(url: str) -> Buckets:
    text = httpx.get(f"{url}/metrics", timeout=10).text
    out: Buckets = {}
    for family in text_string_to_metric_families(text):
        if family.name != "rapport_profile_freshness_seconds":
            continue
        for sample in family.samples:
            if sample.name.endswith("_bucket"):
                stage = sample.labels.get("stage", "fold")
                out.setdefault(stage, {})[float(sample.labels["le"])] = sample.value
    return out


def quantile(before: dict[float, float], after: dict[float, float], q: float) -> float | None:
    """The ``q`` quantile (s) of the observations between the two scrapes, linear
    within the bucket it falls in; None without observations."""
    bounds = sorted(after)
    counts = [after[b] - before.get(b, 0.0) for b in bounds]
    total = counts[-1] if counts else 0.0
    if total <= 0:
        return None
    rank, lower, below = q * total, 0.0, 0.0
    for bound, cumulative in zip(bounds, counts, strict=True):
        if cumulative >= rank:
            if bound == float("inf"):
                return lower
            share = (rank - below) / max(cumulative - below, 1e-12)
            return lower + share * (bound - lower)
        lower, below = bound, cumulative
    return lower


def stage_ms(before: Buckets, after: Buckets) -> dict[str, dict[str, float]]:
    """stage -> {"p50": ms, "p99": ms, "top": ms} of what the load added (stages observed
    only); a quantile at ``top``, the histogram's largest finite bound, is at least that."""
    out = {}
    for stage in ("resolve", "fold"):
        if stage not in after:
            continue
        p50, p99 = (quantile(before.get(stage, {}), after[stage], q) for q in (.5, .99))
        if p50 is not None and p99 is not None:
            top = max((b for b in after[stage] if b != float("inf")), default=float("inf"))
            out[stage] = {"p50": p50 * 1000, "p99": p99 * 1000, "top": top * 1000}
    return out


def per_stage(before: Buckets, after: Buckets) -> str:
    """``resolve p50/p99, fold p50/p99`` in ms, for the bench's table."""
    def ms(v: float, top: float) -> str:
        return f"{'≥' if v >= top else ''}{v:,.0f}"

    return "; ".join(f"{stage} {ms(q['p50'], q['top'])} / {ms(q['p99'], q['top'])} ms"
                     for stage, q in stage_ms(before, after).items()) or "no observations"
