"""Erasure: remove everything of a person that any read model keeps (profile,
identifiers, timeline, scores, segment and audience memberships, decisions, the
profiles merged into it), write tombstones to the compacted topics, destroy the
person's data keys (what they sent stays on Kafka, sealed, and can no longer be read),
and log the erased identifiers as keyed fingerprints so no replay or rebuild brings
the person back."""

from __future__ import annotations

import time

import orjson
from aiokafka import AIOKafkaProducer
from redis.asyncio import Redis

from rapport.shared import keys, sealing, topics
from rapport.shared.privacy import Fingerprints
from rapport.shared.profiles import CustomerProfile, Identity
from rapport.shared.vault import KeyVault

from .identities import PREVIOUS, profile_id_for
from .identity import IdentityStore, identity_of_key
from .store import ProfileStore


def customer_ids(profile: CustomerProfile, everyone: list[Identity]) -> set[str]:
    """Every id the person may have been known by as a customer (profile ids, merged
    profiles, and the raw user and anonymous ids a channel may have asked with)."""
    ids = {profile.customer_id, *profile.merged_from}
    for ident in everyone:
        kinds = ("user_id", "anonymous_id") if ident.type == PREVIOUS else (ident.type,)
        for kind in kinds:
            if kind in ("user_id", "anonymous_id"):
                ids.update({ident.value, profile_id_for(kind, ident.value)})
    return ids


class Eraser:
    def __init__(self, store: ProfileStore, identities: IdentityStore, redis: Redis,
                 producer: AIOKafkaProducer, fingerprints: Fingerprints,
                 vault: KeyVault) -> None:
        self._vault = vault
        self._store = store
        self._identities = identities
        self._redis = redis
        self._producer = producer
        self._fp = fingerprints

    async def erase(self, profile: CustomerProfile) -> None:
        at_ms = int(time.time() * 1000)
        pid = profile.customer_id
        linked = await self._redis.smembers(keys.profile_identities(pid))
        everyone = [*profile.identities]
        everyone += [i for i in (identity_of_key(m.decode()) for m in linked)
                     if i not in everyone]
        # The log first: once it is durable, no rebuild can bring this person back.
        letters = [await self._producer.send(
            topics.ERASURES.name, orjson.dumps({"erased_at_ms": at_ms}),
            key=self._identities.fingerprint(i).encode()) for i in everyone]
        for gone in {pid, *profile.merged_from}:
            letters.append(await self._producer.send(topics.PROFILE_UPDATES.name, None,
                                                     key=gone.encode()))
        for letter in letters:
            await letter
        everyone = await self._identities.erase(pid, everyone, at_ms)
        # What the person sent stays on Kafka, sealed: without the keys nobody reads it.
        await self._vault.destroy(sealing.person_kids(
            self._fp, {pid, *profile.merged_from}, [(i.type, i.value) for i in everyone]))
        await self._forget(profile, everyone)

    async def _forget(self, profile: CustomerProfile, everyone: list[Identity]) -> None:
        """Everything else of the person, slot by slot (single-key writes, so a Redis
        Cluster takes them), the profile itself last: an erasure cut short is done again
        by asking again, as long as the profile is there to be found."""
        pid = profile.customer_id
        layout = self._store.layout
        ids = customer_ids(profile, everyone)
        indexes = [keys.decisions_of(self._fp.profile(c)) for c in sorted(ids)]
        async with self._redis.pipeline(transaction=False) as pipe:
            for index in indexes:
                pipe.smembers(index)
            pipe.smembers(keys.demand_reach_names())
            *decided, reach_names = await pipe.execute()
        async with self._redis.pipeline(transaction=False) as pipe:
            for absorbed in profile.merged_from:  # their ids would still name the person
                for key in (keys.merged_into(absorbed), keys.handed_over(keys.IDS, absorbed),
                            layout.handed_over(absorbed), layout.profile(absorbed),
                            layout.timeline(absorbed)):
                    pipe.delete(key)
            for segment in profile.segments:
                pipe.srem(keys.segment_members(layout.slot(pid), segment), pid)
            for category in profile.affinities:  # the audiences of demand spikes
                pipe.zrem(keys.demand_audience(category), pid)
            for name in sorted(reach_names):  # every region, channel, segment, everyone
                pipe.zrem(keys.demand_reach(name.decode()), *sorted(ids))
            for c in sorted(ids):
                pipe.delete(keys.contacts(self._fp.profile(c)))
            for c, index, members in zip(sorted(ids), indexes, decided, strict=True):
                fp = self._fp.profile(c)
                for m in members:
                    pipe.delete(keys.decision(m.decode()))
                    pipe.delete(keys.attribution_window(fp, m.decode()))
                    pipe.zrem(keys.attribution_open(), f"{fp}|{m.decode()}")
                pipe.delete(index)
                pipe.delete(keys.attribution_decisions(fp))
                pipe.delete(keys.attribution_pending(fp))
            await pipe.execute()
        async with self._redis.pipeline(transaction=True) as tx:
            tx.delete(layout.profile(pid), layout.timeline(pid))  # one slot
            await tx.execute()
