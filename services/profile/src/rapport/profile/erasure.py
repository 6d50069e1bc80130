"""Erasure: remove a person's profile, identifiers, timeline, scores and places in
demand audiences, write tombstones to the compacted topics, and log the erased
identifiers (as hashes) so that no replay or rebuild brings the person back."""

from __future__ import annotations

import time

import orjson
from aiokafka import AIOKafkaProducer
from redis.asyncio import Redis

from rapport.shared import keys, topics
from rapport.shared.profiles import CustomerProfile

from .identity import IdentityStore, identifier_fingerprint
from .store import ProfileStore


class Eraser:
    def __init__(self, store: ProfileStore, identities: IdentityStore, redis: Redis,
                 producer: AIOKafkaProducer) -> None:
        self._store = store
        self._identities = identities
        self._redis = redis
        self._producer = producer

    async def erase(self, profile: CustomerProfile) -> None:
        at_ms = int(time.time() * 1000)
        pid = profile.customer_id
        everyone = [*profile.identities]
        # The log first: once it is durable, no rebuild can bring this person back.
        letters = [await self._producer.send(
            topics.ERASURES.name, orjson.dumps({"erased_at_ms": at_ms}),
            key=identifier_fingerprint(i.type, i.value).encode()) for i in everyone]
        letters.append(await self._producer.send(topics.PROFILE_UPDATES.name, None,
                                                 key=pid.encode()))
        for letter in letters:
            await letter
        await self._identities.erase(pid, everyone, at_ms)
        async with self._redis.pipeline(transaction=True) as tx:
            tx.delete(keys.profile(pid), keys.timeline(pid), keys.scores(pid))
            for absorbed in profile.merged_from:  # their ids would still name the person
                tx.delete(keys.merged_into(absorbed), keys.handed_over(absorbed))
            for segment in profile.segments:
                tx.srem(keys.segment_members(segment), pid)
            for category in profile.affinities:  # the audiences of demand spikes
                tx.zrem(keys.demand_audience(category), pid)
            await tx.execute()
