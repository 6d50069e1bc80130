"""The CDNOW sample through the running system: every purchase posted to ingest, folded
into profiles, the lifetime-value models fitted through the scoring API, and the
published fits found again (Fader, Hardie & Lee 2005: BG/NBD r = 0.243, alpha = 4.414,
a = 0.793, b = 2.426 on the 2,357 customers' purchases to 1997-09-30; Gamma-Gamma
p = 6.25, q = 3.74, gamma = 15.44 on its 946 repeat buyers). Then scores at that moment
use the fit, count only what was bought by then, and rank who buys nothing in the 39
weeks after as riskier."""

from __future__ import annotations

import asyncio
import time
from collections import defaultdict
from dataclasses import dataclass
from datetime import date
from pathlib import Path

import httpx
import pytest

from rapport.shared import redis_store
from rapport.shared.layout import ProfileLayout
from rapport.shared.profiles import CustomerProfile

AGENT = {"Authorization": "Bearer dev-agent"}
OPS = {"Authorization": "Bearer dev-ops"}
ADMIN = {"Authorization": "Bearer dev-admin"}
DATA = Path(__file__).resolve().parent.parent / "data" / "cdnow_sample.txt"
AS_OF = "1997-09-30T23:59:59Z"
CALIBRATION_END = date(1997, 9, 30)
HOLDOUT_END = date(1998, 6, 30)  # the 39 weeks after
PREFIX = "cdnow-"
BATCH = 500
PUBLISHED_BGNBD = {"r": 0.243, "alpha": 4.414, "a": 0.793, "b": 2.426}
PUBLISHED_GG = {"p": 6.25, "q": 3.74, "gamma": 15.44}
MIN_AUC = 0.75


def rows() -> list[tuple[str, date, int, float]]:
    """(customer, day, CDs, dollars) of every transaction in the file."""
    out = []
    for line in DATA.read_text().splitlines():
        if line.strip():
            master, _sample, day, cds, dollars = line.split()
            out.append((f"{PREFIX}{master}", date(int(day[:4]), int(day[4:6]), int(day[6:])),
                        int(cds), float(dollars)))
    return out


def messages(data: list[tuple[str, date, int, float]]) -> list[dict]:
    out = []
    for n, (customer, day, cds, dollars) in enumerate(data):
        out.append({
            "type": "track", "userId": customer, "event": "Order Completed",
            "messageId": f"cdnow-row-{n}", "timestamp": f"{day.isoformat()}T12:00:00Z",
            "properties": {"order_id": f"cdnow-{n}", "total": dollars, "revenue": dollars,
                           "products": [{"sku": "cd", "category": "music",
                                         "quantity": max(1, cds),
                                         "price": round(dollars / max(1, cds), 2)}]}})
    return out


def auc(risk: list[float], churned: list[bool]) -> float:
    """ROC AUC: the chance a churner is ranked riskier than a buyer (ties count half)."""
    ranked = sorted(zip(risk, churned, strict=True))
    rank_sum, i = 0.0, 0
    while i < len(ranked):
        j = i
        while j < len(ranked) and ranked[j][0] == ranked[i][0]:
            j += 1
        mid = (i + 1 + j) / 2  # the mean rank of a run of ties (ranks from 1)
        rank_sum += mid * sum(1 for _, c in ranked[i:j] if c)
        i = j
    pos = sum(churned)
    neg = len(churned) - pos
    return (rank_sum - pos * (pos + 1) / 2) / (pos * neg)


def test_auc_counts_ties_as_half() -> None:
    assert auc([0.1, 0.2, 0.3, 0.4], [False, False, True, True]) == 1.0
    assert auc([0.5, 0.5], [True, False]) == 0.5
    assert auc([0.1, 0.4, 0.35, 0.8], [False, False, True, True]) == 0.75


async def wait_for_profiles(redis_url: str, customers: int, orders: int,
                            timeout: float = 240) -> None:
    redis = redis_store.connect(redis_url)
    try:
        deadline = time.monotonic() + timeout
        seen = (0, 0)
        while time.monotonic() < deadline:
            pattern = ProfileLayout.profile_pattern(f"{PREFIX}*")
            found = [k async for k in redis.scan_iter(match=pattern, count=1000)]
            total = 0
            for start in range(0, len(found), 500):
                for raw in await redis.mget(found[start:start + 500]):
                    if raw is not None:
                        total += CustomerProfile.from_bytes(raw).metrics.orders
            seen = (len(found), total)
            if seen == (customers, orders):
                return
            await asyncio.sleep(1)
        raise AssertionError(f"profiles incomplete after {timeout:.0f}s: (customers, orders) "
                             f"{seen}, expected {(customers, orders)}")
    finally:
        await redis.aclose()


def within(got: dict[str, float], expected: dict[str, float], rel: float = 0.01) -> bool:
    return all(got[k] == pytest.approx(v, rel=rel) for k, v in expected.items())


@dataclass(frozen=True)
class Loaded:
    data: list[tuple[str, date, int, float]]
    fit: dict
    scoring: str


@pytest.fixture(scope="module")
async def cdnow(system) -> Loaded:
    """Every CDNOW purchase sent through ingest and folded into profiles, then the models
    fitted on them as of 1997-09-30 through the scoring API."""
    ingest, scoring = system.url("ingest"), system.url("scoring")
    data = rows()
    assert len({c for c, *_ in data}) == 2357
    async with httpx.AsyncClient(timeout=30) as http:
        msgs = messages(data)
        for start in range(0, len(msgs), BATCH):
            chunk = msgs[start:start + BATCH]
            r = await http.post(f"{ingest}/v1/batch", json={"batch": chunk},
                                auth=("dev-write-key", ""))
            assert r.status_code == 200 and r.json()["accepted"] == len(chunk), r.text
        await wait_for_profiles(system.redis_url, 2357, len(data))
        before = (await http.get(f"{scoring}/v1/models", headers=OPS)).json()
        r = await http.post(f"{scoring}/v1/models/clv/fit", headers=ADMIN,
                            json={"as_of": AS_OF}, timeout=300)
        assert r.status_code == 200, r.text
        assert r.json()["version"] != _clv(before)["version"]
    return Loaded(data, r.json(), scoring)


def _clv(models: dict) -> dict:
    return next(m for m in models["models"] if m["name"] == "clv")


async def test_the_fit_finds_the_published_models_and_is_put_in_use(cdnow: Loaded) -> None:
    fit = cdnow.fit
    assert (fit["customers"], fit["repeat_buyers"]) == (2357, 946), fit
    assert within(fit["bgnbd"], PUBLISHED_BGNBD), fit["bgnbd"]
    assert within(fit["gamma_gamma"], PUBLISHED_GG), fit["gamma_gamma"]
    assert fit["as_of"].startswith("1997-09-30T23:59:59")
    async with httpx.AsyncClient(timeout=30) as http:
        in_use = (await http.get(f"{cdnow.scoring}/v1/models", headers=OPS)).json()
    clv = _clv(in_use)
    assert clv["version"] == fit["version"] and clv["customers"] == 2357
    assert clv["parameters"]["bgnbd"] == fit["bgnbd"]
    assert clv["parameters"]["gamma_gamma"] == fit["gamma_gamma"]
    assert fit["version"] in [h["version"] for h in in_use["history"]]


async def test_scores_at_the_fit_moment_use_it_and_count_only_what_was_bought_by_then(
        cdnow: Loaded) -> None:
    customer = f"{PREFIX}00004"
    mine = [(day, dollars) for c, day, _, dollars in cdnow.data if c == customer]
    before = [(d, v) for d, v in mine if d <= CALIBRATION_END]
    assert 0 < len(before) < len(mine)  # bought before and after 1997-09-30
    async with httpx.AsyncClient(timeout=30) as http:
        r = await http.get(f"{cdnow.scoring}/v1/customers/{customer}/scores", headers=AGENT,
                           params={"as_of": AS_OF})
        later = await http.get(f"{cdnow.scoring}/v1/customers/{customer}/scores",
                               headers=AGENT, params={"as_of": "1998-06-30T23:59:59Z"})
    assert r.status_code == 200, r.text
    scores = r.json()
    assert scores["model_version"] == cdnow.fit["version"]
    assert scores["rfm"]["frequency"] == len({d for d, _ in before})
    assert scores["rfm"]["monetary"] == pytest.approx(sum(v for _, v in before), abs=0.01)
    assert scores["rfm"]["recency_days"] == (CALIBRATION_END - max(before)[0]).days
    assert later.json()["rfm"]["frequency"] == len({d for d, _ in mine})


async def test_a_fit_before_any_purchase_is_refused_and_bad_input_is_a_client_error(
        cdnow: Loaded) -> None:
    scoring = cdnow.scoring
    url = f"{scoring}/v1/customers/{PREFIX}00004/scores"
    async with httpx.AsyncClient(timeout=30) as http:
        r = await http.post(f"{scoring}/v1/models/clv/fit", headers=ADMIN,
                            json={"as_of": "1990-01-01T00:00:00Z"})
        assert r.status_code == 409, r.text
        assert {"code", "message"} <= r.json().keys()
        after = (await http.get(f"{scoring}/v1/models", headers=OPS)).json()
        assert _clv(after)["version"] == cdnow.fit["version"]

        r = await http.get(url, headers=AGENT, params={"as_of": "not-a-time"})
        assert r.status_code == 400 and {"code", "message"} <= r.json().keys(), r.text
        r = await http.get(url, headers=AGENT, params={"horizon_days": "-1"})
        assert 400 <= r.status_code < 500 and {"code", "message"} <= r.json().keys(), r.text
        r = await http.post(f"{scoring}/v1/models/clv/fit", headers=ADMIN,
                            json={"as_of": "not-a-time"})
        assert r.status_code == 400, r.text
        after = (await http.get(f"{scoring}/v1/models", headers=OPS)).json()
        assert _clv(after)["version"] == cdnow.fit["version"]


async def test_churn_risk_ranks_who_buys_nothing_in_the_39_weeks_after_as_riskier(
        cdnow: Loaded) -> None:
    bought_after: dict[str, bool] = defaultdict(bool)
    for c, day, _, _ in cdnow.data:
        bought_after[c] |= CALIBRATION_END < day <= HOLDOUT_END
    customers = sorted(bought_after)
    churned = [not bought_after[c] for c in customers]
    limits = httpx.Limits(max_connections=32, max_keepalive_connections=32)
    async with httpx.AsyncClient(timeout=30, limits=limits) as http:
        gate = asyncio.Semaphore(32)

        async def risk(customer: str, horizon: int | None) -> float:
            params = {"as_of": AS_OF, **({"horizon_days": horizon} if horizon else {})}
            async with gate:
                r = await http.get(f"{cdnow.scoring}/v1/customers/{customer}/scores",
                                   headers=AGENT, params=params)
            assert r.status_code == 200, r.text
            assert r.json()["model_version"] == cdnow.fit["version"]
            return r.json()["churn_risk"]

        served = await asyncio.gather(*(risk(c, None) for c in customers))
        matched = await asyncio.gather(*(risk(c, 273) for c in customers))
    auc_served, auc_matched = auc(served, churned), auc(matched, churned)
    print(f"churn-risk ROC AUC, no purchase in the 39 weeks after 1997-09-30 "
          f"({sum(churned)} of {len(churned)} churned): as served (90-day horizon) "
          f"{auc_served:.3f}, with horizon_days=273 {auc_matched:.3f}")
    assert auc_served >= MIN_AUC, f"churn-risk ROC AUC {auc_served:.3f} < {MIN_AUC}"
    assert auc_matched >= MIN_AUC, f"churn-risk ROC AUC (273 days) {auc_matched:.3f} < {MIN_AUC}"
