"""The ops dashboard's numbers, from the collector's samples and the services' APIs."""

from __future__ import annotations

from typing import Any

from . import lag, prom_text
from .ops_collector import DEAD_LETTER_TOPICS, Collected, Sample

RATE_SPAN_S = 10.0


def _ago(samples: list[Sample], span_s: float) -> Sample | None:
    if len(samples) < 2:
        return None
    last = samples[-1]
    for s in samples:
        if s.at >= last.at - span_s - 0.5:
            return s if s is not last else samples[-2]
    return samples[-2]


def topic_rates(samples: list[Sample]) -> list[dict[str, Any]]:
    last = samples[-1]
    before = _ago(samples, RATE_SPAN_S)
    totals: dict[str, int] = {}
    for (topic, _), end in last.ends.items():
        totals[topic] = totals.get(topic, 0) + end
    rates: dict[str, float] = {}
    if before is not None:
        prior: dict[str, int] = {}
        for (topic, _), end in before.ends.items():
            prior[topic] = prior.get(topic, 0) + end
        rates = prom_text.rates({k: float(v) for k, v in prior.items()},
                                {k: float(v) for k, v in totals.items()}, last.at - before.at)
    return [{"topic": t, "rate": rates.get(t, 0.0), "total": totals[t]}
            for t in sorted(totals)]


def group_lags(samples: list[Sample]) -> list[dict[str, Any]]:
    last = samples[-1]
    out = []
    for group, committed in sorted(last.committed.items()):
        parts = [{"topic": t, "partition": p, "lag": max(0, last.ends.get((t, p), off) - off)}
                 for (t, p), off in sorted(committed.items())]
        history = []
        for s in samples:
            c = s.committed.get(group)
            if c:
                history.append((s.at, float(sum(max(0, s.ends.get(k, o) - o)
                                                for k, o in c.items()))))
        clear = lag.time_to_clear(history)
        total = sum(p["lag"] for p in parts)
        recent = [p for p in history if p[0] >= last.at - 60]
        out.append({"group": group, "lag": total, "partitions": parts,
                    "trend": lag.trend(recent) if total else "caught up",
                    "clears_in": lag.describe_clear(clear),
                    "spark": [[round(t) for t, _ in history], [v for _, v in history]]})
    return out


def _counter_view(samples: list[Sample], name: str, by: str) -> dict[str, dict[str, float]]:
    last = samples[-1]
    now = prom_text.total(last.metrics, name, by=by)
    before = _ago(samples, RATE_SPAN_S)
    rates = prom_text.rates(prom_text.total(before.metrics, name, by=by), now,
                            last.at - before.at) if before else {}
    return {k: {"total": v, "rate": rates.get(k, 0.0)} for k, v in sorted(now.items())}


def freshness(samples: list[Sample]) -> list[dict[str, Any]]:
    last = samples[-1]
    first = _ago(samples, 60.0)
    name = "rapport_profile_freshness_seconds"
    stages = sorted({dict(lb).get("stage", "") for lb in last.metrics.get(f"{name}_bucket", {})})
    out = []
    for stage in stages:
        now_b = prom_text.buckets(last.metrics, name, {"stage": stage})
        recent = prom_text.increase(prom_text.buckets(first.metrics, name, {"stage": stage}),
                                    now_b) if first else now_b
        if not recent or max(recent.values(), default=0) <= 0:
            recent = now_b
        out.append({"stage": stage, "p50": prom_text.quantile(0.5, recent),
                    "p99": prom_text.quantile(0.99, recent)})
    return out


def offers(report: dict[str, Any] | None) -> list[dict[str, Any]]:
    rows = []
    for o in (report or {}).get("offers", []):
        decided = o.get("decisions") or 0
        rows.append({**o, "actual_rate": (o.get("acceptances") or 0) / decided if decided else
                     None, "expected_rate": (o.get("expected_acceptances") or 0) / decided
                     if decided else None})
    return rows


def build(data: Collected, demand: dict[str, Any], report: dict[str, Any] | None,
          problems: list[str]) -> dict[str, Any]:
    samples = list(data.samples)
    if not samples:
        return {"ready": False, "problems": problems, "errors": data.errors}
    last = samples[-1]
    decisions = _counter_view(samples, "rapport_decisions_total", "group")
    made = sum(v["total"] for v in decisions.values())
    dl = {t: sum(e for (topic, _), e in last.ends.items() if topic == t)
          for t in DEAD_LETTER_TOPICS}
    return {
        "ready": True, "updated_at": last.at, "topics": topic_rates(samples),
        "groups": group_lags(samples), "freshness": freshness(samples),
        "ingest": _counter_view(samples, "rapport_ingest_messages_total", "outcome"),
        "dead_letters": dl, "letters": data.letters,
        "decisions_rate": sum(v["rate"] for v in decisions.values()),
        "decisions_total": made,
        "control_share": decisions.get("control", {}).get("total", 0) / made if made else None,
        "demand": demand, "offers": offers(report), "problems": problems,
        "errors": data.errors,
    }
