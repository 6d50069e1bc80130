"""Redis adapter of the closed loop: the response models (versioned, one for every
channel and replica) and what each outcome and logged decision changes, applied once.

The models live in one hash (``keys.learner_model``): the probit's fields (see
:meth:`.learner.ProbitModel.to_fields`) and ``rate:<offer>`` (acceptances, other
outcomes) for the per-offer baseline. A batch is applied in one optimistic
transaction watching the model and the batch's once-markers: a redelivered batch, or
an outcome heard twice (the API and an ingest event), changes nothing the second time.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np
from redis.asyncio import Redis
from redis.exceptions import WatchError

from rapport.shared import keys
from rapport.shared.events import DecisionLogged

from . import reports
from .domain import Decision
from .learner import BetaModel, ProbitModel

MARKER_TTL_S = 120 * 86400
RATE = "rate:"
REPORT_TTL_S = 400 * 86400


class RatesPredictor:
    """The per-offer baseline as a predictor: one rate per offer for everyone."""

    def __init__(self, model: BetaModel, version: int) -> None:
        self.model, self.version = model, version

    def predict(self, offer_ids: list[str], x: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        a, b = self.model._ab(offer_ids)
        n = a + b
        mean = a / n
        return mean, np.sqrt(mean * (1 - mean) / (n + 1))


@dataclass(frozen=True)
class Final:
    """A final outcome (accepted, rejected or ignored) of one action of a decision."""

    decision: Decision
    action_id: str
    outcome: str


@dataclass
class Applied:
    finals: list[Final] = field(default_factory=list)
    logged: int = 0
    duplicates: int = 0


def load(fields: dict[bytes, bytes]) -> tuple[ProbitModel, BetaModel]:
    probit = ProbitModel.from_fields(fields)
    rates = BetaModel()
    for k, v in fields.items():
        name = k.decode()
        if name.startswith(RATE):
            acc, other = v.decode().split(",")
            rates.counts[name[len(RATE):]] = [float(acc), float(other)]
    return probit, rates


class LearningStore:
    def __init__(self, redis: Redis, cache_s: float = 1.0) -> None:
        self._redis = redis
        self._cache_s = cache_s
        self._cached: tuple[float, ProbitModel, RatesPredictor] | None = None
        self._reading = asyncio.Lock()

    async def models(self) -> tuple[ProbitModel, RatesPredictor]:
        """The models in use, read again when their version moved (checked every
        ``cache_s`` by one caller, the others keeping the last ones); the last ones
        read while Redis fails."""
        cached = self._cached
        if cached is not None and (time.monotonic() - cached[0] < self._cache_s
                                   or self._reading.locked()):
            return cached[1], cached[2]
        async with self._reading:
            now = time.monotonic()
            try:
                version = int(await self._redis.hget(keys.learner_model(), "version") or 0)
                if self._cached is None or self._cached[2].version != version:
                    probit, rates = load(await self._redis.hgetall(keys.learner_model()))
                    self._cached = (now, probit, RatesPredictor(rates, version))
                else:
                    self._cached = (now, self._cached[1], self._cached[2])
            except Exception:
                if self._cached is None:
                    return ProbitModel(), RatesPredictor(BetaModel(), 0)
            return self._cached[1], self._cached[2]

    async def apply(self, finals: Sequence[Final], logged: Sequence[DecisionLogged]
                    ) -> Applied:
        """Learn from the final outcomes and count them and the logged decisions in the
        reports, each once."""
        final_marks = [keys.outcome_seen(f.decision.decision_id, f.action_id, "final")
                       for f in finals]
        log_marks = [keys.outcome_seen(d.decision_id, "-", "logged") for d in logged]
        outcome_keys = sorted({keys.decision_outcomes(f.decision.decision_id) for f in finals})
        while True:
            async with self._redis.pipeline(transaction=True) as pipe:
                try:
                    await pipe.watch(keys.learner_model(), *final_marks, *log_marks,
                                     *outcome_keys)
                    return await self._apply(pipe, finals, logged, final_marks, log_marks)
                except WatchError:
                    continue

    async def _apply(self, pipe, finals, logged, final_marks, log_marks) -> Applied:  # type: ignore[no-untyped-def]
        seen = await pipe.execute_command("MGET", *final_marks, *log_marks) \
            if final_marks or log_marks else []  # (one slot; a cluster pipeline refuses mget)
        done = Applied()
        accepted_of: dict[str, list[str]] = {}
        for f in finals:
            key = keys.decision_outcomes(f.decision.decision_id)
            if key not in accepted_of:
                raw = await pipe.hgetall(key)
                accepted_of[key] = [k.decode() for k, v in raw.items()
                                    if v == b"accepted" and k != b"profit"]
        probit, rates = load(await pipe.hgetall(keys.learner_model()))
        version = int((await pipe.hget(keys.learner_model(), "version")) or 0)
        counts: dict[int, dict[str, float]] = {}
        writes: dict[str, dict[str, str]] = {}
        changed: set[str] = set()
        new_marks: list[str] = []
        for f, mark, already in zip(finals, final_marks, seen[:len(finals)], strict=True):
            if already is not None or mark in new_marks:
                done.duplicates += 1
                continue
            new_marks.append(mark)
            action = next(a for a in f.decision.actions if a.action_id == f.action_id)
            accepted = f.outcome == "accepted"
            if f.decision.features is not None:
                probit.update(action.offer_id, np.asarray(f.decision.features), accepted)
            rates.update(action.offer_id, accepted)
            changed.add(action.offer_id)
            key = keys.decision_outcomes(f.decision.decision_id)
            writes.setdefault(key, {})[f.action_id] = f.outcome
            if accepted:
                hour = reports.hour_of(f.decision.decided_at.timestamp())
                _merge(counts.setdefault(hour, {}), reports.accepted_counts(
                    f.decision, f.action_id, accepted_of[key]))
                accepted_of[key].append(f.action_id)
            done.finals.append(f)
        for d, mark, already in zip(logged, log_marks, seen[len(finals):], strict=True):
            if already is not None or mark in new_marks:
                done.duplicates += 1
                continue
            new_marks.append(mark)
            _merge(counts.setdefault(reports.hour_of(d.decided_at.timestamp()), {}),
                   reports.logged_counts(d))
            done.logged += 1
        pipe.multi()
        if changed:
            fields = probit.to_fields()
            update: dict[str, bytes | str] = {k: v for k, v in fields.items()
                                              if not k.startswith("offer:")
                                              or k[6:] in changed}
            for offer_id in changed:
                acc, other = rates.counts[offer_id]
                update[RATE + offer_id] = f"{acc:g},{other:g}"
            update["version"] = str(version + 1)
            pipe.hset(keys.learner_model(), mapping=update)
        for mark in new_marks:
            pipe.set(mark, "1", ex=MARKER_TTL_S)
        for key, outcomes in writes.items():
            pipe.hset(key, mapping=outcomes)
            pipe.expire(key, MARKER_TTL_S)
        for hour, hour_counts in counts.items():
            for name, amount in hour_counts.items():
                pipe.hincrbyfloat(keys.offer_report(hour), name, amount)
            pipe.expire(keys.offer_report(hour), REPORT_TTL_S)
            pipe.zadd(keys.offer_report_hours(), {str(hour): hour})
        if done.finals:
            pipe.zrem(keys.outcomes_due(), *{f"{f.decision.decision_id}|{f.action_id}"
                                             for f in done.finals})
        await pipe.execute()
        return done

    async def report_hours(self, since_h: int, until_h: int) -> dict[int, dict[str, float]]:
        hours = [int(h) for h in await self._redis.zrangebyscore(
            keys.offer_report_hours(), since_h, until_h)]
        async with self._redis.pipeline(transaction=False) as pipe:
            for h in hours:
                pipe.hgetall(keys.offer_report(h))
            raws = await pipe.execute()
        return {h: {k.decode(): float(v) for k, v in raw.items()}
                for h, raw in zip(hours, raws, strict=True)}

    async def outcomes_of(self, decision_ids: Sequence[str]) -> list[dict[str, str]]:
        async with self._redis.pipeline(transaction=False) as pipe:
            for d in decision_ids:
                pipe.hgetall(keys.decision_outcomes(d))
            raws = await pipe.execute()
        return [{k.decode(): v.decode() for k, v in raw.items()} for raw in raws]

    async def due(self, now_s: float, limit: int = 500) -> list[tuple[str, str]]:
        members = await self._redis.zrangebyscore(keys.outcomes_due(), "-inf", now_s,
                                                  start=0, num=limit)
        return [tuple(m.decode().split("|", 1)) for m in members]  # type: ignore[misc]

    async def forget_due(self, members: Sequence[tuple[str, str]]) -> None:
        if members:
            await self._redis.zrem(keys.outcomes_due(), *(f"{d}|{a}" for d, a in members))


def _merge(into: dict[str, float], counts: dict[str, float]) -> None:
    for k, v in counts.items():
        into[k] = into.get(k, 0.0) + v
