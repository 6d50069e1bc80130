"""The demand consumer: fact records from stage 2 (:mod:`.facts`) counted a poll at a
time, each partition only past what it has counted, in one ``{demand}`` transaction
that fails (and is redone from what Redis holds) if another worker counted first."""

from __future__ import annotations

import time

from aiokafka import ConsumerRecord
from prometheus_client import Counter

from rapport.shared.deadletter import DeadLetters

from ..identity import IdentityStore
from . import facts
from .facts import FactBatch
from .stage import DemandStage
from .store import DemandStore

FACTS = Counter("rapport_demand_facts_total", "Demand facts read by the demand consumer",
                ["outcome"])


class DemandCounter:
    def __init__(self, stage: DemandStage, store: DemandStore, identities: IdentityStore,
                 letters: DeadLetters) -> None:
        self._stage = stage
        self._store = store
        self._identities = identities
        self._letters = letters

    def forget(self) -> None:
        self._stage.forget()

    async def assigned(self, prefix: str) -> None:
        """Partitions moved here: forget cached clocks, and hold the watermark at every
        known source's clock until it reports or goes idle (:meth:`DemandStore.hello`)."""
        self._stage.forget()
        await self._store.hello(prefix, time.time())

    async def handle_batch(self, records: list[ConsumerRecord]) -> None:
        decoded: list[FactBatch] = []
        for r in records:
            try:
                decoded.append(facts.decode(r.value))
            except (ValueError, KeyError, TypeError, AttributeError) as exc:
                await self._letters.send(topic=r.topic, partition=r.partition,
                                         offset=r.offset, value=r.value,
                                         reason=f"undecodable demand facts: {exc}")
                FACTS.labels("dead_lettered").inc()
        if not decoded:
            return
        await self._drop_erased(decoded)
        while not await self._count(decoded):
            self._stage.forget()  # another worker counted first: start from what it stored

    async def _count(self, batches: list[FactBatch]) -> bool:
        members = sorted({b.member for b in batches})
        counted = await self._store.counted(members)
        through = dict(counted)
        fresh = []
        for b in batches:
            past = b.past(through[b.member])
            if past:
                fresh.append(past)
            if b.facts:
                through[b.member] = max(through[b.member], max(f.offset for f in b.facts))
        fx = await self._stage.effects(fresh)
        moved = {m: through[m] for m in members if through[m] != counted[m]}
        if not await self._store.commit(fx, counted, moved):
            return False
        self._stage.committed(fx)
        seen = sum(len(b.facts) for b in batches)
        new = sum(len(b.facts) for b in fresh)
        FACTS.labels("counted").inc(new)
        if seen > new:
            FACTS.labels("already_counted").inc(seen - new)
        return True

    async def _drop_erased(self, batches: list[FactBatch]) -> None:
        """A replayed fact must not bring an erased person back into an audience."""
        ids = sorted({pid for b in batches for m in b.audience_add.values() for pid in m}
                     | {pid for b in batches for pid in b.reach_points})
        erased = await self._identities.erased_profiles(ids)
        if erased:
            for b in batches:
                for scores in [*b.audience_add.values(), b.reach_points]:
                    for pid in erased.keys() & scores.keys():
                        del scores[pid]
