"""The decision's adapters in one place (:class:`.deciding.Parts`): the catalog and
policies, the response models, the contact limits, keeping and logging decisions."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from aiokafka import AIOKafkaProducer

from rapport.shared import topics
from rapport.shared.events import Channel, DecisionLogged

from . import exploration
from .catalog import Catalog, Offer
from .contacts import ContactBook
from .deciding import Predictor
from .domain import Decision
from .learning_store import LearningStore
from .limits import Reservation
from .policies import PolicyConfig
from .spikes import SpikeWatch
from .store import NextActionStore
from .uplift_store import UpliftStore


class ServiceParts:
    def __init__(self, store: NextActionStore, learning: LearningStore,
                 contacts: ContactBook, producer: AIOKafkaProducer,
                 spikes: SpikeWatch | None = None, uplift: UpliftStore | None = None
                 ) -> None:
        self._store = store
        self._learning = learning
        self._contacts = contacts
        self._producer = producer
        self._spikes = spikes
        self._uplift = uplift

    async def catalog(self) -> Catalog:
        return await self._store.catalog()

    async def policies(self) -> PolicyConfig:
        return await self._store.policies()

    async def model(self, learner: str) -> Predictor:
        probit, rates = await self._learning.models()
        return probit if learner == "contextual" else rates

    async def uplift(self) -> Any:
        if self._uplift is None:
            raise LookupError("no uplift learner wired")
        return await self._uplift.learner()

    async def spikes(self) -> frozenset[str]:
        return frozenset() if self._spikes is None else self._spikes.categories()

    async def reserve(self, customer_id: str, offers: list[Offer], limit: int, at: datetime,
                      *, channel: Channel, sms: bool, epsilon: float, u: float, r: float
                      ) -> Any:
        if not self._contacts.needed(offers, channel, sms):  # nothing to count: no trip
            choice = exploration.choose(len(offers), limit, epsilon, u, r)
            made = set(choice.made)
            return Reservation(
                verdicts={o.offer_id: "made" if i in made else "not_chosen"
                          for i, o in enumerate(offers)},
                probabilities={o.offer_id: choice.probabilities[i]
                               for i, o in enumerate(offers)}, explored=choice.explored)
        return await self._contacts.reserve(customer_id, offers, limit, at, channel=channel,
                                            sms=sms, epsilon=epsilon, u=u, r=r)

    async def keep(self, decision: Decision) -> None:
        await self._store.keep(decision)

    async def log(self, record: DecisionLogged) -> None:
        """Handed to the producer, not awaited: the decision is kept in Redis already,
        and the log's delivery is the producer's (acks=all, retried)."""
        await self._producer.send(topics.DECISIONS.name, record.to_bytes(),
                                  key=record.decision_id.encode())
