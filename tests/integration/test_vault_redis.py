"""The key vault against the real Redis: writers racing for a person's key agree on
one, readers never create keys, and destroying a key shreds every record sealed before,
even once a new key exists for the same person."""

from __future__ import annotations

import asyncio

import pytest
from redis.asyncio import Redis

from rapport.shared import keys, redis_store
from rapport.shared.localstack import Stack
from rapport.shared.vault import KeyVault, SealedRecordError, Sealer, seal_fields
from tests.conftest import redis_url

DB = 9
PERSONAL = frozenset({"email", "traits"})


def kid(i: int) -> str:
    return f"{i:032x}"


async def test_keys_for_create_is_idempotent(redis: Redis) -> None:
    vault = KeyVault(redis)
    first = await vault.keys_for([kid(1), kid(2), kid(1)], create=True)
    assert first.keys() == {kid(1), kid(2)} and first[kid(1)] != first[kid(2)]
    assert all(len(k) == 32 for k in first.values())
    assert await vault.keys_for([kid(2), kid(1), kid(3)], create=True) == {
        **first, kid(3): (await redis.get(keys.vault_key(kid(3))))}
    assert await redis.get(keys.vault_key(kid(1))) == first[kid(1)]
    assert await vault.keys_for([], create=True) == {}


async def test_racing_writers_agree_on_one_key(stack: Stack, redis: Redis) -> None:
    kids = [kid(100 + i) for i in range(50)]
    clients = [redis_store.connect(redis_url(stack, DB)) for _ in range(4)]
    try:
        vaults = [KeyVault(c) for c in (redis, *clients)]
        # Each caller asks for the kids in its own order, many at once on each connection.
        calls = [vaults[i % len(vaults)].keys_for(kids[i % 50:] + kids[:i % 50], create=True)
                 for i in range(60)]
        answers = await asyncio.gather(*calls)
    finally:
        for c in clients:
            await c.aclose()
    assert all(a == answers[0] for a in answers)
    assert len(set(answers[0].values())) == 50
    assert answers[0] == await KeyVault(redis).keys_for(kids, create=False)


async def test_readers_never_create_keys(redis: Redis) -> None:
    vault = KeyVault(redis)
    await vault.keys_for([kid(1)], create=True)
    found = await vault.keys_for([kid(1), kid(2)], create=False)
    assert found.keys() == {kid(1)}
    assert await redis.exists(keys.vault_key(kid(2))) == 0
    assert await vault.keys_for([], create=False) == {}


async def test_a_kid_that_is_not_a_fingerprint_touches_no_key(redis: Redis) -> None:
    vault = KeyVault(redis)
    for bad in ("*", "rapport:profile:x", "AB" * 16):
        with pytest.raises(ValueError):
            await vault.keys_for([bad], create=True)
        with pytest.raises(ValueError):
            await vault.destroy([bad])
    assert await redis.dbsize() == 0


async def test_a_corrupt_stored_key_is_an_error(redis: Redis) -> None:
    await redis.set(keys.vault_key(kid(1)), b"short")
    with pytest.raises(RuntimeError):
        await KeyVault(redis).keys_for([kid(1)], create=False)


async def test_sealer_round_trip_and_erasure(redis: Redis) -> None:
    vault = KeyVault(redis)
    sealer = Sealer(vault)
    alice, bob = kid(1), kid(2)
    records = [(alice, {"id": "e1", "email": "alice@x.io", "traits": {"name": "Alice"}}),
               (bob, {"id": "e2", "email": "bob@x.io"}),
               (alice, {"id": "e3", "email": "alice@y.io"}),
               (kid(3), {"id": "e4", "page": "/home"})]  # nothing personal: no key
    sealed = await sealer.seal_many(records, PERSONAL)
    assert [s.get("sealed", {}).get("kid") for s in sealed] == [alice, bob, alice, None]
    assert all("email" not in s for s in sealed)
    assert await redis.exists(keys.vault_key(kid(3))) == 0
    legacy = {"id": "e0", "email": "old@x.io"}  # written before sealing existed
    assert await sealer.open_many([*sealed, legacy]) == [obj for _, obj in records] + [legacy]

    assert await vault.destroy([alice, alice, kid(9)]) == 1
    opened = await sealer.open_many(sealed)
    assert opened == [None, records[1][1], None, records[3][1]]
    assert await redis.exists(keys.vault_key(alice)) == 0  # the read did not bring it back

    # Alice comes back: a new key seals her new records and opens none of the old ones.
    again = await sealer.seal_many([(alice, {"id": "e5", "email": "alice@z.io"})], PERSONAL)
    assert await sealer.open_many([*sealed, *again]) == [
        None, records[1][1], None, records[3][1], {"id": "e5", "email": "alice@z.io"}]
    assert await vault.destroy([]) == 0


async def test_one_key_fetch_per_batch(redis: Redis) -> None:
    calls: list[str] = []

    class Counting(KeyVault):
        async def keys_for(self, kids, *, create):  # type: ignore[no-untyped-def]
            calls.append("create" if create else "read")
            return await super().keys_for(kids, create=create)

    sealer = Sealer(Counting(redis))
    sealed = await sealer.seal_many([(kid(i % 7), {"email": f"{i}@x.io"}) for i in range(100)],
                                    PERSONAL)
    assert len(await sealer.open_many(sealed)) == 100
    assert calls == ["create", "read"]


async def test_a_malformed_envelope_fails_the_batch_loudly(redis: Redis) -> None:
    sealer = Sealer(KeyVault(redis))
    key = (await KeyVault(redis).keys_for([kid(1)], create=True))[kid(1)]
    good = seal_fields({"email": "a@x.io"}, PERSONAL, key, kid(1))
    with pytest.raises(SealedRecordError):
        await sealer.open_many([good, {"sealed": {"kid": kid(1), "n": "x"}}])
    assert (await sealer.open_many([good]))[0] == {"email": "a@x.io"}
