"""The customer read model every service reads through: find a person by any of their
identifiers, read their profile, compute their scores at a moment.

Only this module knows where the profile service keeps profiles and identity links and
where the scoring service keeps its models and population sketches; services do not
read each other's keys. Erasure holds by construction: an erased person has no profile
and no identity links, and scores are computed from the profile when asked (nothing
personal is stored by scoring but an anonymous point in the population sketches, which
the erasure's tombstone retracts).
"""

from __future__ import annotations

import time
from collections.abc import AsyncIterator
from datetime import datetime

from redis.asyncio import Redis

from . import identifiers, keys, topics
from .profiles import CustomerProfile
from .scores.compute import Scores, ScoringPolicy, score
from .scores.model import PRIOR, ClvModel
from .scores.population import METRICS, MetricSketches, SketchPopulation

LOOKUP_ORDER = ("user_id", "anonymous_id", "email", "phone", "loyalty_id")
"""Kinds an identifier given alone (a path parameter) is tried as, in this order."""


class CustomerReadModel:
    def __init__(self, redis: Redis, policy: ScoringPolicy | None = None, *,
                 cache_s: float = 2.0, partitions: int = topics.PROFILE_UPDATES.partitions,
                 ) -> None:
        self._redis = redis
        self.policy = policy or ScoringPolicy()
        self._cache_s = cache_s
        self._partitions = partitions
        self._model: tuple[float, ClvModel] | None = None
        self._population: tuple[float, SketchPopulation] | None = None

    # --- identity and profile -------------------------------------------------------

    async def resolve(self, kind: str, value: str) -> str | None:
        """The profile id an identifier of a known kind belongs to (normalised as the
        profile service keys it), if any."""
        norm = identifiers.normalize(kind, value)
        if norm is None:
            return None
        raw = await self._redis.get(keys.identity(kind, norm))
        return None if raw is None else raw.decode()

    async def profile(self, customer_id: str) -> CustomerProfile | None:
        raw = await self._redis.get(keys.profile(customer_id))
        return None if raw is None else CustomerProfile.from_bytes(raw)

    async def find(self, identifier: str) -> CustomerProfile | None:
        """Any identifier of a person (profile id, user id, anonymous id, email, phone,
        loyalty id) finds them."""
        found = await self.profile(identifier)
        for kind in LOOKUP_ORDER if found is None else ():
            resolved = await self.resolve(kind, identifier)
            found = None if resolved is None else await self.profile(resolved)
            if found is not None:
                break
        return found

    async def scan_profiles(self, count: int = 1000) -> AsyncIterator[list[CustomerProfile]]:
        """Every profile, in batches (for fits and rebuilds; order unspecified)."""
        pattern = keys.profile("*")
        async for chunk in _chunks(self._redis.scan_iter(match=pattern, count=count), count):
            raws = await self._redis.mget(chunk)
            yield [CustomerProfile.from_bytes(r) for r in raws if r is not None]

    # --- scores ---------------------------------------------------------------------

    async def model(self) -> ClvModel:
        """The lifetime-value model in use (the published prior until a first fit)."""
        now = time.monotonic()
        if self._model is None or now - self._model[0] > self._cache_s:
            version = await self._redis.get(keys.clv_current())
            raw = None if version is None else await self._redis.get(
                keys.clv_model(version.decode()))
            self._model = (now, PRIOR if raw is None else ClvModel.model_validate_json(raw))
        return self._model[1]

    def forget_cache(self) -> None:
        self._model = self._population = None

    async def population(self) -> SketchPopulation:
        now = time.monotonic()
        if self._population is None or now - self._population[0] > self._cache_s:
            async with self._redis.pipeline(transaction=False) as pipe:
                for partition in range(self._partitions):
                    pipe.hgetall(keys.population_sketches(partition))
                parts = await pipe.execute()
            self._population = (now, SketchPopulation.merged(
                decode_sketches(raw) for raw in parts if raw))
        return self._population[1]

    async def scores(self, profile: CustomerProfile, as_of: datetime,
                     horizon_days: int | None = None) -> Scores:
        return score(profile, as_of, await self.model(), await self.population(),
                     self.policy, horizon_days)


def decode_sketches(raw: dict[bytes, bytes]) -> dict[str, MetricSketches]:
    """A partition's stored sketches (``metric|added``, ``metric|retracted``)."""
    out = {}
    for metric in METRICS:
        added, retracted = raw.get(f"{metric}|added".encode()), raw.get(
            f"{metric}|retracted".encode())
        if added is not None and retracted is not None:
            out[metric] = MetricSketches.from_bytes(added, retracted)
    return out


def encode_sketches(sketches: dict[str, MetricSketches]) -> dict[str, bytes]:
    out = {}
    for metric, pair in sketches.items():
        out[f"{metric}|added"], out[f"{metric}|retracted"] = pair.to_bytes()
    return out


async def _chunks(it: AsyncIterator[bytes], size: int) -> AsyncIterator[list[bytes]]:
    chunk: list[bytes] = []
    async for item in it:
        chunk.append(item)
        if len(chunk) >= size:
            yield chunk
            chunk = []
    if chunk:
        yield chunk
