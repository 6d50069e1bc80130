"""What ingest puts on Kafka names nobody: touchpoints are keyed by their person's
fingerprint with every id, trait, property and context sealed; a dead letter's message
is sealed under the key of the person it names, or stripped when it names nobody."""

from datetime import UTC, datetime

import orjson

from rapport.ingest.domain import touchpoint_body
from rapport.ingest.sealing import IngestSeals
from rapport.ingest.settings import Source
from rapport.shared.privacy import Fingerprints
from rapport.shared.sealing import TouchpointSeals
from rapport.shared.vault import Sealer

NOW = datetime(2026, 11, 23, 12, 0, tzinfo=UTC)
FP = Fingerprints("a-test-secret-of-32-characters!!")


class MemoryVault:
    """KeyVault's contract in memory (the Redis one has its own integration tests)."""

    def __init__(self) -> None:
        self.keys: dict[str, bytes] = {}

    async def keys_for(self, kids, *, create):
        kids = list(kids)
        if create:
            for kid in kids:
                self.keys.setdefault(kid, bytes(range(32)) if not self.keys else
                                     bytes([len(self.keys)] * 32))
        return {k: self.keys[k] for k in kids if k in self.keys}

    async def destroy(self, kids):
        return sum(self.keys.pop(k, None) is not None for k in list(kids))


def message(**fields):
    return touchpoint_body({"type": "identify", "messageId": "m1", **fields}, index=0,
                     source=Source(source="s"), received_at=NOW)


async def test_touchpoints_are_keyed_by_fingerprint_and_sealed_then_opened_or_shredded():
    vault = MemoryVault()
    seals = IngestSeals(Sealer(vault), FP)
    tp = message(userId="ann-7f3c91", anonymousId="device-5e21a0",
                 traits={"email": "ann@example.com", "name": "Ann Example"})
    [(key, value)] = await seals.touchpoints([tp])
    assert key == FP.of("user_id", "ann-7f3c91").encode()
    for secret in (b"ann-7f3c91", b"device-5e21a0", b"Ann Example", b"ann@"):
        assert secret not in value
    body = orjson.loads(value)
    assert body["message_id"] == "m1" and "sealed" in body and "traits" not in body
    opened = (await TouchpointSeals(Sealer(vault), FP).open([body]))[0]
    assert opened["user_id"] == "ann-7f3c91" and opened["traits"]["email"] == "ann@example.com"
    await vault.destroy([FP.of("user_id", "ann-7f3c91")])
    assert await TouchpointSeals(Sealer(vault), FP).open([body]) == [None]


async def test_dead_letters_are_sealed_for_a_person_and_stripped_for_nobody():
    vault = MemoryVault()
    seals = IngestSeals(Sealer(vault), FP)
    named = {"type": "track", "userId": "bob", "traits": {"email": "bob@example.com"}}
    nobody = {"type": "track", "event": "Order Completed", "userId": "n/a",
              "traits": {"email": "eve@example.com"}}
    letters = await seals.letters([{"index": 0}, {"index": 1}], [named, nobody])
    assert all(b"@example.com" not in letter for letter in letters)
    first, second = (orjson.loads(x) for x in letters)
    assert "sealed" in first and "message" not in first
    assert second["message"]["event"] == "Order Completed" and "withheld" in second["message"]
    assert "userId" not in second["message"]
