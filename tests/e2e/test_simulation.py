"""`make run`'s Try lines: the customer the simulation names is really there, on
the profile and scoring APIs, right after its first batch."""

import httpx

from rapport.shared import simulate

AGENT = {"Authorization": "Bearer dev-agent"}


async def test_the_showcase_customer_resolves_after_the_first_batch(system):
    visible: list[tuple[str, bool]] = []

    async def started(customer_id: str) -> None:
        visible.append((customer_id, await simulate.profile_visible(
            system.url("profile"), "dev-agent", customer_id, timeout=60)))

    await simulate.send(system.url("ingest"), "dev-write-key", customers=200, rate=2000,
                        total=100, batch_size=50, progress=False, started=started, seed=11)
    (customer, found), = visible
    assert found, f"{customer} not on the profile API within 60 s"
    async with httpx.AsyncClient(timeout=10, headers=AGENT) as http:
        profile = (await http.get(f"{system.url('profile')}/v1/customers/{customer}")).json()
        assert any(i["value"] == customer for i in profile["identities"]), profile
        scores = await http.get(f"{system.url('scoring')}/v1/customers/{customer}/scores")
        assert scores.status_code == 200, scores.text
