"""Fitting the lifetime-value models on the whole population, on demand and on a
schedule, in the background.

The purchase histories are gathered from every profile through the shared read model,
summarised as of the moment asked, and fitted in a worker thread (numpy and scipy
release the interpreter for the heavy parts), so score reads go on meanwhile. A fit
that fails its checks raises :class:`FitRejected` and the model in use stays.
"""

from __future__ import annotations

import asyncio
import os
import time
from datetime import UTC, datetime

import structlog
from prometheus_client import Gauge, Histogram

from rapport.shared.customers import CustomerReadModel
from rapport.shared.purchases import PurchaseSummary
from rapport.shared.scores.model import PRIOR_VERSION, BgNbd, ClvModel, GammaGamma

from .fitting import ClvFit, FitRejected, Histories, fit_clv
from .models import ModelStore

log = structlog.get_logger(__name__)
FIT_SECONDS = Histogram("rapport_scoring_fit_seconds", "Time to gather and fit the CLV models",
                        buckets=(0.1, 0.5, 1, 2, 5, 10, 30, 60, 120, 300))
FIT_PARAMS = Gauge("rapport_scoring_model_parameter", "Parameters of the CLV model in use",
                   ["model", "parameter"])
FIT_CUSTOMERS = Gauge("rapport_scoring_model_customers", "Customers the model in use was "
                      "fitted on", ["kind"])


class FitBusy(RuntimeError):
    """Another fit is running (here or in another replica)."""


class Refitter:
    def __init__(self, reader: CustomerReadModel, models: ModelStore, *,
                 lock_ttl_s: int = 900) -> None:
        self._reader = reader
        self._models = models
        self._lock_ttl = lock_ttl_s
        self._holder = f"{os.uname().nodename}:{os.getpid()}"
        self._local = asyncio.Lock()

    async def summaries(self, as_of: datetime) -> list[PurchaseSummary]:
        """Every purchase history as of ``as_of`` (the lean scan: only the purchases of
        each stored profile are parsed, not the whole profile validated)."""
        out: list[PurchaseSummary] = []
        async for batch in self._reader.scan_purchase_summaries(as_of):
            out.extend(batch)
        return out

    async def fit(self, as_of: datetime | None = None) -> ClvModel:
        """Fit as of ``as_of`` (default now) and put the result in use."""
        as_of = as_of or datetime.now(UTC)
        if self._local.locked() or not await self._models.lock(self._holder, self._lock_ttl):
            raise FitBusy("a fit is already running; try again when it is done")
        started = time.perf_counter()
        try:
            async with self._local:
                gathered = await self.summaries(as_of)
                gather_s = time.perf_counter() - started
                histories = Histories.from_summaries(gathered)
                result = await asyncio.to_thread(fit_clv, histories,
                                                 as_start(await self._reader.model()))
                now = datetime.now(UTC)
                model = ClvModel(
                    version=await self._models.next_version(), fitted_at=now, as_of=as_of,
                    customers=result.customers, repeat_buyers=result.repeat_buyers,
                    bgnbd=BgNbd(r=result.bgnbd.r, alpha=result.bgnbd.alpha,
                                a=result.bgnbd.a, b=result.bgnbd.b),
                    gamma_gamma=GammaGamma(p=result.gamma_gamma.p, q=result.gamma_gamma.q,
                                           gamma=result.gamma_gamma.gamma),
                    diagnostics={**result.diagnostics, "gather_s": round(gather_s, 3),
                                 "total_s": round(time.perf_counter() - started, 3)})
                await self._models.put_in_use(model, now)
        finally:
            await self._models.unlock(self._holder)
        FIT_SECONDS.observe(time.perf_counter() - started)
        self._reader.forget_cache()
        publish_metrics(model)
        log.info("clv_fitted", version=model.version, customers=model.customers,
                 repeat_buyers=model.repeat_buyers, seconds=model.diagnostics.get("total_s"))
        return model

    async def run_schedule(self, interval_s: float, first_delay_s: float = 60.0) -> None:
        """Refit every ``interval_s``; a rejected or busy fit is logged and skipped."""
        await asyncio.sleep(first_delay_s)
        while True:
            try:
                await self.fit()
            except (FitRejected, FitBusy) as exc:
                log.info("scheduled_fit_skipped", reason=str(exc))
            except Exception as exc:  # the schedule must outlive one failure
                log.error("scheduled_fit_failed", error=repr(exc))
            await asyncio.sleep(interval_s)


def as_start(model: ClvModel) -> ClvFit | None:
    """The model in use as the fit's starting point (a warm start converges in fewer
    steps); none for the published prior."""
    if model.version == PRIOR_VERSION:
        return None
    return ClvFit(bgnbd=model.bgnbd.params(), gamma_gamma=model.gamma_gamma.params(),
                  customers=model.customers, repeat_buyers=model.repeat_buyers)


def publish_metrics(model: ClvModel) -> None:
    for name, params in (("bgnbd", model.bgnbd), ("gamma_gamma", model.gamma_gamma)):
        for key, value in params.model_dump().items():
            FIT_PARAMS.labels(name, key).set(value)
    FIT_CUSTOMERS.labels("customers").set(model.customers)
    FIT_CUSTOMERS.labels("repeat_buyers").set(model.repeat_buyers)
