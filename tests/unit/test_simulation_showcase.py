"""The simulator's first batch identifies one customer by userId, so `make run`
can name a customer that exists (simulated customers are otherwise anonymous
until they log in); its Try lines wait until the profile API finds them."""

from datetime import UTC, datetime
from functools import partial

import httpx
import orjson
import pytest

from rapport.ingest.domain import normalize
from rapport.ingest.settings import DEV_WRITE_KEYS
from rapport.shared import simulate
from rapport.shared.events import Touchpoint
from rapport.shared.simulate import Population

SOURCE = DEV_WRITE_KEYS["dev-write-key"]


@pytest.mark.parametrize("seed", [1, 7, 42])
@pytest.mark.parametrize("size", [1, 2, 50])
def test_the_first_batch_identifies_the_showcase_customer_by_user_id(seed, size):
    now = datetime.now(UTC)
    population = Population(300, seed=seed)
    first = population.batch(size, now)
    assert len(first) == size
    who = population.showcase.user_id
    assert first[0]["type"] == "identify" and first[0]["userId"] == who
    assert first[0]["traits"]["email"]
    touchpoint = normalize(first[0], index=0, source=SOURCE, received_at=now)
    assert isinstance(touchpoint, Touchpoint) and touchpoint.user_id == who
    if size >= 2:
        assert first[1]["event"] == "Order Completed" and first[1]["userId"] == who
    later = [m for _ in range(20) for m in population.batch(50, now)]
    # Introduced once; from then on the customer is known: their web touchpoints carry
    # the userId too.
    assert not [m for m in later if m["type"] == "identify" and m.get("userId") == who
                and "email" in m["traits"]]
    assert all(m.get("userId") == who for m in later
               if m.get("anonymousId") == population.showcase.anonymous_id)


def test_the_stream_stays_seeded():
    now = datetime.now(UTC)
    a, b = Population(100, seed=5), Population(100, seed=5)
    assert [a.batch(10, now) for _ in range(5)] == [b.batch(10, now) for _ in range(5)]
    assert Population(1, seed=5).showcase.user_id == "u000000"


def fake_ingest(monkeypatch, handler) -> list[list[dict]]:
    posted: list[list[dict]] = []

    def record(request: httpx.Request) -> httpx.Response:
        posted.append(orjson.loads(request.content)["batch"])
        return handler(len(posted))

    monkeypatch.setattr(simulate.httpx, "AsyncClient", partial(
        httpx.AsyncClient, transport=httpx.MockTransport(record)))
    return posted


async def test_send_announces_the_showcase_customer_once_ingest_took_the_first_batch(
        monkeypatch):
    # The first attempt is refused (503): the announcement waits for the retry's 200.
    posted = fake_ingest(monkeypatch, lambda n: httpx.Response(
        503, headers={"Retry-After": "0"}) if n == 1 else httpx.Response(200, json={}))
    announced: list[tuple[str, int]] = []

    async def started(customer_id: str) -> None:
        announced.append((customer_id, len(posted)))

    sent = await simulate.send("http://ingest", "dev-write-key", customers=50, rate=1e6,
                               total=120, batch_size=50, progress=False, started=started)
    assert sent == 120 and [len(b) for b in posted] == [50, 50, 50, 20]
    (customer, after), = announced
    assert customer == "u000000" and after == 2
    assert posted[1][0]["type"] == "identify" and posted[1][0]["userId"] == customer


async def test_profile_visible_waits_for_the_profile_api(monkeypatch):
    answers = iter([404, 404, 200])
    seen: list[httpx.Request] = []

    def profile(request: httpx.Request) -> httpx.Response:
        seen.append(request)
        return httpx.Response(next(answers, 200))

    monkeypatch.setattr(simulate.httpx, "AsyncClient", partial(
        httpx.AsyncClient, transport=httpx.MockTransport(profile)))
    monkeypatch.setattr(simulate.asyncio, "sleep", _no_sleep)
    assert await simulate.profile_visible("http://profile", "dev-agent", "u000000")
    assert len(seen) == 3 and seen[0].url.path == "/v1/customers/u000000"
    assert seen[0].headers["authorization"] == "Bearer dev-agent"

    monkeypatch.setattr(simulate.httpx, "AsyncClient", partial(
        httpx.AsyncClient, transport=httpx.MockTransport(lambda r: httpx.Response(404))))
    assert not await simulate.profile_visible("http://profile", "dev-agent", "u000000",
                                              timeout=0)


async def _no_sleep(_: float) -> None:
    return None
