"""Where profiles live: each profile's keys carry the hash tag of the partition of the
re-keyed stream that owns it, so everything one stage-2 batch of one partition writes
(profiles, timelines, segment members, offsets, owner epoch) is one Redis Cluster
slot, and profiles spread over the cluster's masters as the partitions do.

The tags are chosen so the partitions' slots are evenly spaced over the 16,384 slots
(which ``redis-cli --cluster create`` hands out as equal contiguous ranges): with P
partitions on M masters, each master holds P/M of them, not whatever CRC16 gives.
"""

from __future__ import annotations

import zlib
from dataclasses import dataclass
from functools import cached_property

import orjson
from redis.crc import REDIS_CLUSTER_HASH_SLOTS, key_slot

from . import keys, topics


def partition_of(profile_id: str, partitions: int) -> int:
    """The partition of the re-keyed stream that owns a profile (stable everywhere)."""
    return zlib.crc32(profile_id.encode()) % partitions


def partition_tags(partitions: int) -> tuple[str, ...]:
    """One hash tag per partition, the i-th in the i-th of ``partitions`` equal ranges
    of slots (``p<i>`` with the first suffix that lands there)."""
    width = REDIS_CLUSTER_HASH_SLOTS / partitions
    tags = []
    for i in range(partitions):
        n = 0
        while not i * width <= key_slot(f"p{i}.{n}".encode()) < (i + 1) * width:
            n += 1
        tags.append(f"p{i}.{n}")
    return tuple(tags)


@dataclass(frozen=True)
class ProfileLayout:
    partitions: int = topics.RESOLVED.partitions

    @cached_property
    def tags(self) -> tuple[str, ...]:
        return partition_tags(self.partitions)

    def partition(self, profile_id: str) -> int:
        return partition_of(profile_id, self.partitions)

    def slot(self, profile_id: str) -> str:
        """The hash tag of the profile's keys."""
        return self.tags[self.partition(profile_id)]

    def partition_slot(self, partition: int) -> str:
        return self.tags[partition]

    def profile(self, profile_id: str) -> str:
        return keys.profile(self.slot(profile_id), profile_id)

    def timeline(self, profile_id: str) -> str:
        return keys.timeline(self.slot(profile_id), profile_id)

    def handed_over(self, profile_id: str) -> str:
        return keys.handed_over(self.slot(profile_id), profile_id)

    def segment_keys(self, segment: str) -> list[str]:
        """The segment's member sets, one per partition."""
        return [keys.segment_members(tag, segment) for tag in self.tags]

    @staticmethod
    def profile_pattern(match: str = "*") -> str:
        """A SCAN pattern for profiles whose id matches ``match`` (any partition)."""
        return f"{keys.PREFIX}:{{*}}:profile:{match}"

    @staticmethod
    def profile_id_of(key: bytes | str) -> str:
        """The profile id a profile key names."""
        text = key.decode() if isinstance(key, bytes) else key
        return text.split("}:profile:", 1)[1]

    def to_bytes(self) -> bytes:
        return orjson.dumps({"profile_partitions": self.partitions})

    @classmethod
    def from_bytes(cls, raw: bytes | None) -> ProfileLayout | None:
        if raw is None:
            return None
        return cls(int(orjson.loads(raw)["profile_partitions"]))


class LayoutMismatch(RuntimeError):
    """The profiles in Redis were laid out for another number of partitions."""


async def adopt(redis, layout: ProfileLayout) -> None:  # type: ignore[no-untyped-def]
    """Record the layout the profile service writes by; refuse one that contradicts the
    layout the stored profiles were written by (a repartitioned topic needs a rebuild,
    which forgets the layout with the profiles)."""
    if await redis.set(keys.layout(), layout.to_bytes(), nx=True):
        return
    stored = ProfileLayout.from_bytes(await redis.get(keys.layout()))
    if stored is not None and stored != layout:
        raise LayoutMismatch(
            f"the stored profiles are laid out for {stored.partitions} partitions of the "
            f"re-keyed stream, which now has {layout.partitions}: run `rapport rebuild` "
            "to lay them out again")


async def current(redis) -> ProfileLayout:  # type: ignore[no-untyped-def]
    """The layout readers find profiles by (the default until the service records one)."""
    return ProfileLayout.from_bytes(await redis.get(keys.layout())) or ProfileLayout()
