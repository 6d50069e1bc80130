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

import asyncio
import re
import time
import zlib
from collections.abc import AsyncIterator, Iterable
from datetime import datetime
from typing import Any

import orjson
import structlog
from redis.asyncio import Redis

from . import identifiers, keys, layout, topics
from .layout import ProfileLayout
from .profiles import CustomerProfile
from .purchases import PurchaseBase, PurchaseSummary, day_before, summarise
from .redis_store import get_many, scan_chunks
from .scores.compute import Scores, ScoringPolicy, score
from .scores.model import PRIOR, ClvModel
from .scores.population import METRICS, MetricSketches, SketchPopulation

log = structlog.get_logger(__name__)
LOOKUP_ORDER = ("user_id", "anonymous_id", "email", "phone", "loyalty_id")
"""Kinds an identifier given alone (a path parameter) is tried as, in this order."""


class CustomerReadModel:
    def __init__(self, redis: Redis, policy: ScoringPolicy | None = None, *,
                 cache_s: float = 2.0, partitions: int = topics.PROFILE_UPDATES.partitions,
                 layout: ProfileLayout | None = None) -> None:
        """``layout``: where profiles are (default: as the profile service recorded it)."""
        self._redis = redis
        self._layout = layout
        self._layout_read: tuple[float, ProfileLayout] | None = None
        self.policy = policy or ScoringPolicy()
        self._cache_s = cache_s
        self._partitions = partitions
        self._model: tuple[float, ClvModel] | None = None
        self._population: tuple[float, SketchPopulation] | None = None
        self._refreshing: asyncio.Future[None] | None = None

    # --- identity and profile -------------------------------------------------------

    async def resolve(self, kind: str, value: str) -> str | None:
        """The profile id an identifier of a known kind belongs to (normalised as the
        profile service keys it), if any."""
        norm = identifiers.normalize(kind, value)
        if norm is None:
            return None
        raw = await self._redis.get(keys.identity(kind, norm))
        return None if raw is None else raw.decode()

    async def layout(self) -> ProfileLayout:
        if self._layout is not None:
            return self._layout
        now = time.monotonic()
        if self._layout_read is None or now - self._layout_read[0] > 30 * self._cache_s:
            self._layout_read = (now, await layout.current(self._redis))
        return self._layout_read[1]

    async def profile(self, customer_id: str) -> CustomerProfile | None:
        raw = await self._redis.get((await self.layout()).profile(customer_id))
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
        async for chunk in scan_chunks(self._redis, ProfileLayout.profile_pattern(), count):
            raws = await get_many(self._redis, chunk)
            yield [CustomerProfile.from_bytes(r) for r in raws if r is not None]

    async def scan_purchase_summaries(self, as_of: datetime, count: int = 2000,
                                      ) -> AsyncIterator[list[PurchaseSummary]]:
        """Every customer's purchase summary as of a moment, in batches (those without a
        purchase by then are left out): what :meth:`scan_profiles` then
        ``profile.purchases.summary(as_of)`` gives, without validating whole profiles.

        Only the ``purchases`` part of each stored profile is read (see
        :func:`stored_purchase_summary`). Each batch is parsed in a worker thread while
        the next one is fetched, so the event loop keeps serving meanwhile (the thread
        gives up the interpreter every few milliseconds, and while inflating)."""
        as_of_day = day_before(as_of)
        chunks = scan_chunks(self._redis, ProfileLayout.profile_pattern(), count)

        async def fetch() -> list[bytes | None] | None:
            found = await anext(chunks, None)
            return None if found is None else await get_many(self._redis, found)

        pending: asyncio.Future[list[bytes | None] | None] | None = None
        try:
            raws = await fetch()
            while raws is not None:
                pending = asyncio.ensure_future(fetch())
                batch = await asyncio.to_thread(purchase_summaries, raws, as_of_day)
                if batch:
                    yield batch
                raws = await pending
                pending = None
        finally:
            if pending is not None:
                pending.cancel()
                # Wait until it has stopped: cancelling only asks, and the chunk generator
                # may still be running inside it (closing it then raises). Its outcome is
                # retrieved here: a failed prefetch nobody awaits is no news.
                await asyncio.gather(pending, return_exceptions=True)
            await chunks.aclose()

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
        """The live population (merged sketches of every partition). Past its cache time
        the cached one is still answered while one background task reads the new one,
        so no request waits for the merge but the very first."""
        now = time.monotonic()
        if self._population is None:
            self._population = (now, await self._read_population())
        elif now - self._population[0] > self._cache_s and self._refreshing is None:
            self._refreshing = asyncio.ensure_future(self._refresh_population())
        return self._population[1]

    async def _refresh_population(self) -> None:
        try:
            self._population = (time.monotonic(), await self._read_population())
        except Exception as exc:  # keep answering the last one; the next call retries
            log.warning("population_refresh_failed", error=repr(exc))
        finally:
            self._refreshing = None

    async def _read_population(self) -> SketchPopulation:
        async with self._redis.pipeline(transaction=False) as pipe:
            for partition in range(self._partitions):
                pipe.hgetall(keys.population_sketches(partition))
            parts = await pipe.execute()
        return SketchPopulation.merged(decode_sketches(raw) for raw in parts if raw)

    async def scores(self, profile: CustomerProfile, as_of: datetime,
                     horizon_days: int | None = None) -> Scores:
        return score(profile, as_of, await self.model(), await self.population(),
                     self.policy, horizon_days)


_PURCHASES_KEY = b'"purchases":'
_PURCHASES = re.compile(rb'"purchases":(\{(?:[^{}]|\{[^{}]*\})*\})')
"""The ``purchases`` member and its object (numbers and its own keys only: no string in
it can hold a brace)."""
_FIELDS = list(CustomerProfile.model_fields)
_LATER = frozenset(_FIELDS[_FIELDS.index("purchases") + 1:]) | {"schema_version"}
"""The top-level fields that can follow ``purchases`` (``to_stored`` writes
``schema_version`` last)."""


def _stored_purchases(doc: bytes) -> dict[str, Any] | None:
    """The ``purchases`` member of a profile's JSON, parsing only that member and what
    follows it.

    Pydantic writes the fields in their declared order, so the top-level ``purchases`` is
    the last ``"purchases":`` key of the document: every field where a person's data can
    name a key (traits, trait_times, affinities) comes before it. What is found is taken
    only if what follows it, opened with a brace, is one JSON object of the later
    top-level fields (so it closed exactly the document: the key was at the top level)
    and it has the shape of a purchase history. Anything else, such as a profile
    without purchases whose affinity is named "purchases", is read by parsing the whole
    document."""
    at = doc.rfind(_PURCHASES_KEY)
    if at < 0:
        return None
    found = _PURCHASES.match(doc, at)
    if found is not None:
        rest = doc[found.end():]
        try:
            member = orjson.loads(found.group(1))
            later = {} if rest == b"}" else (
                orjson.loads(b"{" + rest[1:]) if rest[:1] == b"," else None)
        except orjson.JSONDecodeError:
            later = None
        if isinstance(later, dict) and later.keys() <= _LATER and \
                isinstance(member, dict) and member.keys() <= {"days", "base"}:
            return member
    return orjson.loads(doc).get("purchases")


def purchase_summaries(raws: Iterable[bytes | None], as_of_day: int) -> list[PurchaseSummary]:
    """:func:`stored_purchase_summary` of each stored profile that has a purchase by then."""
    out = []
    for raw in raws:
        if raw is not None:
            summary = stored_purchase_summary(raw, as_of_day)
            if summary is not None:
                out.append(summary)
    return out


def stored_purchase_summary(raw: bytes | str, as_of_day: int) -> PurchaseSummary | None:
    """``CustomerProfile.from_bytes(raw).purchases`` summarised as of the end of
    ``as_of_day`` (see :func:`rapport.shared.purchases.summarise`), reading only the
    profile's ``purchases``: the stored form is inflated, the purchases member alone is
    parsed by orjson, and the rest of the profile is never parsed nor validated."""
    if isinstance(raw, str):
        raw = raw.encode()
    elif raw[:1] != b"{":
        raw = zlib.decompress(raw)
    stored = _stored_purchases(raw)
    if not stored:
        return None
    days, base = stored.get("days"), stored.get("base")
    history = _Stored(
        {int(day): float(value) for day, value in days.items()} if days else {},
        None if base is None else PurchaseBase.model_construct(
            days=int(base["days"]), first_day=int(base["first_day"]),
            last_day=int(base["last_day"]), first_value=float(base["first_value"]),
            value=float(base["value"])))
    return summarise(history, as_of_day)  # type: ignore[arg-type]  # what it reads of one


class _Stored:
    """What :func:`summarise` reads of a :class:`PurchaseHistory` (``days``, ``base``),
    without building the model: the same function summarises both."""

    __slots__ = ("base", "days")

    def __init__(self, days: dict[int, float], base: PurchaseBase | None) -> None:
        self.days, self.base = days, base


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
