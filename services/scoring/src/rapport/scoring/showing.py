"""What ops see of the models in use (``GET /v1/models``)."""

from __future__ import annotations

from dataclasses import asdict
from datetime import timedelta
from typing import Any

from rapport.shared.customers import CustomerReadModel
from rapport.shared.purchases import EPOCH
from rapport.shared.scores import rfm
from rapport.shared.scores.population import SKETCH_K

from .models import ModelStore

QUINTILES = (0.2, 0.4, 0.6, 0.8)


async def models_in_use(reader: CustomerReadModel, store: ModelStore) -> dict[str, Any]:
    clv = await reader.model()
    population = await reader.population()
    policy = reader.policy

    def cuts(metric: str) -> list[float | None]:
        return population.quantiles(metric, QUINTILES)

    last_days = cuts(rfm.RECENCY)
    sizes = {m: population.size(m) for m in (rfm.RECENCY, rfm.VALUE)}
    sketch = population.metrics[rfm.RECENCY]
    sketch_diag = {"k": SKETCH_K, "added": sketch.added_n, "retracted": sketch.retracted_n,
                   "retained": sketch.retained,
                   "normalized_rank_error": round(sketch.rank_error(), 5)}
    history = [{"version": m.version, "fitted_at": m.fitted_at, "as_of": m.as_of,
                "customers": m.customers} for m in await store.history()]
    models = [
        {"name": "clv", "kind": "BG/NBD + Gamma-Gamma", "version": clv.version,
         "fitted_at": clv.fitted_at, "as_of": clv.as_of, "customers": clv.customers,
         "repeat_buyers": clv.repeat_buyers,
         "parameters": {"bgnbd": clv.bgnbd.model_dump(),
                        "gamma_gamma": clv.gamma_gamma.model_dump()},
         "diagnostics": clv.diagnostics},
        {"name": "rfm", "kind": "population quintiles (KLL sketches, live)",
         "version": f"population-{sketch.added_n}-{sketch.retracted_n}", "fitted_at": None,
         "as_of": None, "customers": sizes[rfm.RECENCY],
         "parameters": {
             "last_purchase_day_cuts": [None if d is None else
                                        str(EPOCH + timedelta(days=int(d))) for d in last_days],
             "frequency_cuts": cuts(rfm.FREQUENCY), "monetary_cuts": cuts(rfm.MONETARY),
             "segments": rfm.SEGMENTS},
         "diagnostics": sketch_diag},
        {"name": "churn", "kind": "P(no purchase in the horizon) under BG/NBD, shifted by "
                                  "service signals", "version": clv.version,
         "fitted_at": clv.fitted_at, "as_of": clv.as_of, "customers": clv.customers,
         "parameters": asdict(policy.churn), "diagnostics": {}},
        {"name": "value_tier", "kind": "population quantiles of profit + expected profit",
         "version": f"population-{sketch.added_n}-{sketch.retracted_n}", "fitted_at": None,
         "as_of": None, "customers": sizes[rfm.VALUE],
         "parameters": {"best_share": policy.best_share, "worst_share": policy.worst_share,
                        "value_cuts": population.quantiles(
                            rfm.VALUE, (policy.worst_share, 1 - policy.best_share)),
                        "profit": asdict(policy.profit)},
         "diagnostics": {}},
    ]
    # The list in a fixed order, and each model by its name too.
    return {"models": models, **{m["name"]: m for m in models}, "history": history}
