"""The reads behind a spike's audience (``GET /v1/demand/spikes/{id}/audience``): the
candidates of its bounded set (a category's by affinity, a region's, channel's,
segment's or everyone's by value), their profiles and their scores at the moment
asked, handed to the pure rankings of :mod:`.audience` and :mod:`.reach`."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any

from fastapi import Depends, Request

from rapport.shared.customers import CustomerReadModel
from rapport.shared.profiles import CustomerProfile
from rapport.shared.scores.compute import Scores
from rapport.shared.service import ApiError

from ..store import ProfileStore
from . import audience, reach
from .series import SeriesKey
from .store import DemandStore


async def _scorer(request: Request) -> CustomerReadModel:
    reader: CustomerReadModel | None = getattr(request.app.state, "reader", None)
    if reader is None:
        raise ApiError(503, "scores are starting")
    return reader


Scorer = Annotated[CustomerReadModel, Depends(_scorer)]


def _over(limit: int) -> int:
    """Candidates read for ``limit`` answers (some may be gone or no longer members)."""
    return limit * 2 + 10


async def _scored(profiles: ProfileStore, reader: CustomerReadModel, ids: list[str],
                  now: datetime) -> tuple[dict[str, CustomerProfile | None], dict[str, Scores]]:
    loaded = dict(zip(ids, await profiles.load_many(ids), strict=True))
    scores = {pid: await reader.scores(p, now) for pid, p in loaded.items() if p is not None}
    return loaded, scores


async def by_reach(store: DemandStore, profiles: ProfileStore, reader: CustomerReadModel,
                   series: SeriesKey, *, limit: int, now: datetime) -> dict[str, Any]:
    """A region, channel, segment or total spike's customers, by their scores."""
    set_name = reach.of_series(series)
    if set_name is None:
        return {"basis": f"no customers to rank for a {series.dimension} spike",
                "segments": [], "customers": []}
    candidates = await store.reach(set_name, _over(limit))
    loaded, scores = await _scored(profiles, reader, [pid for pid, _ in candidates], now)
    who = ("every customer" if set_name == reach.EVERYONE
           else f"customers of {series.dimension.value} {series.value!r}")
    return {"reach": set_name, "basis": f"{reach.BASIS}, among {who}",
            "model_version": (await reader.model()).version,
            **reach.rank(set_name, loaded, scores, limit=limit)}


async def by_category(store: DemandStore, profiles: ProfileStore, reader: CustomerReadModel,
                      category: str, *, limit: int, now: datetime,
                      half_life_days: float) -> dict[str, Any]:
    """A category or product spike's customers: affinity first, equal affinities by
    their expected value."""
    candidates = await store.audience(category, _over(limit))
    loaded, scores = await _scored(profiles, reader, [pid for pid, _ in candidates], now)
    ranked = audience.rank(candidates, loaded, now=now, half_life_days=half_life_days,
                           limit=limit, value={pid: s.clv.expected_value_90d
                                               for pid, s in scores.items()})
    return {"basis": f"affinity for category {category!r}, then expected value over the "
                     "next 90 days", **ranked}
