"""Erasure through the running system leaves nothing readable: no Redis key or value
holds the person's identifiers or personal data (every key scanned), their decisions
are gone, and on Kafka their records can no longer be opened; personal fields were
never readable there in the first place."""

import uuid
import zlib
from datetime import UTC, datetime, timedelta

import httpx
import orjson
import pytest
import redis.asyncio as aioredis

from rapport.shared import topics
from rapport.shared.privacy import DEV_PRIVACY_SECRET, Fingerprints
from rapport.shared.sealing import TouchpointSeals
from rapport.shared.vault import KeyVault, Sealer
from tests.helpers import end_offsets, eventually, read_between

AGENT = {"Authorization": "Bearer dev-agent"}
CHANNEL = {"Authorization": "Bearer dev-channel"}
ADMIN = {"Authorization": "Bearer dev-admin"}


@pytest.fixture
async def http():
    async with httpx.AsyncClient(timeout=10) as client:
        yield client


async def _all_records(bootstrap: str, spec: topics.TopicSpec) -> list[tuple[bytes, bytes]]:
    ends = await end_offsets(bootstrap, spec)
    if not any(ends.values()):
        return []
    records = await read_between(bootstrap, spec, dict.fromkeys(ends, 0), ends, timeout=15)
    return [(r.key or b"", r.value or b"") for r in records]


def _readable(raw: bytes) -> bytes:
    """A Redis value as a reader could see it (stored profiles are deflated)."""
    try:
        return raw + zlib.decompress(raw)
    except zlib.error:
        return raw


async def _redis_dump(r: aioredis.Redis) -> list[bytes]:
    """Every key and every value of every key (strings, hashes, sets, sorted sets)."""
    out: list[bytes] = []
    async for key in r.scan_iter(count=1000):
        out.append(key)
        kind = (await r.type(key)).decode()
        if kind == "string":
            out.append(_readable(await r.get(key) or b""))
        elif kind == "hash":
            for field, value in (await r.hgetall(key)).items():
                out += [field, _readable(value)]
        elif kind == "set":
            out += list(await r.smembers(key))
        elif kind == "zset":
            out += [m for m, _ in await r.zrange(key, 0, -1, withscores=True)]
        elif kind == "list":
            out += list(await r.lrange(key, 0, -1))
    return out


async def test_erasure_leaves_nothing_readable_in_redis_or_kafka(system, http):
    ingest, profile, scoring, nba = (system.url(s) for s in
                                     ("ingest", "profile", "scoring", "next-action"))
    run = uuid.uuid4().hex[:10]
    user, anon = f"erase-me-{run}", f"device-{run}"
    email, phone, name = f"Erin.{run}@Example.com", f"+44 20 7946 {run[:4]}", f"Erin {run}"
    t0 = datetime.now(UTC) - timedelta(hours=2)
    at = lambda m: (t0 + timedelta(minutes=m)).isoformat()  # noqa: E731
    batch = [
        {"type": "page", "anonymousId": anon, "name": "Home", "timestamp": at(0)},
        {"type": "track", "anonymousId": anon, "event": "Product Viewed", "timestamp": at(1),
         "properties": {"product_id": "sho-0001", "category": "shoes", "price": 80}},
        {"type": "identify", "userId": user, "anonymousId": anon, "timestamp": at(2),
         "traits": {"email": email, "phone": phone, "name": name,
                    "loyalty_id": f"L-{run}", "region": "west"}},
        {"type": "track", "userId": user, "event": "Order Completed", "timestamp": at(3),
         "properties": {"order_id": f"o-{run}", "total": 80.0,
                        "products": [{"product_id": "sho-0001", "category": "shoes",
                                      "price": 80.0, "quantity": 1}]}},
    ]
    resp = await http.post(f"{ingest}/v1/batch", json={"batch": batch},
                           auth=("dev-write-key", ""))
    assert resp.status_code == 200 and resp.json()["accepted"] == 4, resp.text

    async def complete():
        r = await http.get(f"{profile}/v1/customers/{user}", headers=AGENT)
        ok = r.status_code == 200 and r.json()["metrics"]["touchpoints"] == 4
        return r.json() if ok else None
    await eventually(complete, timeout=60)
    await eventually(lambda: _ok(http, f"{scoring}/v1/customers/{user}/scores"), timeout=30)
    decisions = []
    for who in ({"customer_id": user}, {"anonymous_id": anon}):
        r = await http.post(f"{nba}/v1/next-best-action", headers=CHANNEL,
                            json={**who, "channel": "web"})
        assert r.status_code == 200
        decisions.append(r.json()["decision_id"])

    assert (await http.delete(f"{profile}/v1/customers/{user}",
                              headers=ADMIN)).status_code == 204

    # No API answers anything of the person.
    for url, params in ((f"{profile}/v1/customers/{user}", None),
                        (f"{profile}/v1/customers", {"email": email}),
                        (f"{profile}/v1/customers", {"phone": phone}),
                        (f"{profile}/v1/customers/{anon}", None),
                        (f"{scoring}/v1/customers/{user}/scores", None)):
        assert (await http.get(url, params=params, headers=AGENT)).status_code == 404, url
    for decision in decisions:
        got = await http.get(f"{nba}/v1/decisions/{decision}", headers=AGENT)
        assert got.status_code == 404, decision

    # Redis, every key and value: none of the person's identifiers or personal data,
    # once scoring has caught up with what it had read before the erasure.
    secrets = [user.encode(), anon.encode(), email.lower().encode(), email.encode(),
               name.encode(), f"L-{run}".encode(), phone.replace(" ", "").encode()]
    r = aioredis.from_url(system.redis_url)
    try:
        async def clean():
            dump = await _redis_dump(r)
            leaks = {s for s in secrets for blob in dump if s in blob}
            return True if not leaks else None
        await eventually(clean, timeout=20)

        # Kafka: personal fields were never readable, and the records can no longer be
        # opened now that the person's keys are destroyed.
        bootstrap = system.kafka_bootstrap
        readable = [email.lower().encode(), name.encode(), f"L-{run}".encode()]
        for spec in (topics.TOUCHPOINTS, topics.RESOLVED, topics.PROFILE_UPDATES,
                     topics.DEAD_LETTER, topics.IDENTITY_EVENTS, topics.ERASURES):
            for key, value in await _all_records(bootstrap, spec):
                for s in readable:
                    assert s not in key and s not in value, (spec.name, s)
        touchpoints = await _all_records(bootstrap, topics.TOUCHPOINTS)
        for key, value in touchpoints:  # the topic kept forever names nobody
            assert user.encode() not in key + value and anon.encode() not in key + value
        fp = Fingerprints(DEV_PRIVACY_SECRET)
        mine = {fp.of("user_id", user).encode(), fp.of("anonymous_id", anon).encode()}
        sent = [orjson.loads(v) for k, v in touchpoints if k in mine]
        assert len(sent) == 4, (len(touchpoints), sorted(mine), [k for k, _ in touchpoints][-6:])
        opened = await TouchpointSeals(Sealer(KeyVault(r)), fp).open(sent)
        assert opened == [None] * 4, "sealed under destroyed keys"
    finally:
        await r.aclose()


async def _ok(http, url):
    r = await http.get(url, headers=AGENT)
    return r.status_code == 200
