"""The contact book on the real Redis: the per-person script chooses exactly as
``exploration.choose`` does among the allowed candidates, concurrent decisions cannot
pass a cap or a rule of 1 twice, the contact policy counts decisions per medium across
offers, daily budgets are paced through the day, and outcomes count once."""

import asyncio
import random
import uuid
from datetime import UTC, datetime, timedelta
from types import SimpleNamespace

from rapport.next_action.app import build
from rapport.next_action.catalog import Offer
from rapport.next_action.contacts import ContactBook
from rapport.next_action.exploration import choose, probabilities
from rapport.next_action.limits import ContactRule
from rapport.next_action.settings import NextActionSettings
from rapport.profile.erasure import Eraser
from rapport.shared import keys
from rapport.shared.events import Channel
from rapport.shared.layout import ProfileLayout
from rapport.shared.privacy import DEV_PRIVACY_SECRET, Fingerprints
from rapport.shared.profiles import Consent, CustomerProfile, Metrics
from tests.conftest import redis_url
from tests.helpers import serving, without_exploration

DB = 7
NOW = datetime(2026, 3, 2, 12, tzinfo=UTC)
FP = Fingerprints(DEV_PRIVACY_SECRET)
EMAIL, WEB, MOBILE = Channel.EMAIL, Channel.WEB, Channel.MOBILE


def offer(oid: str, **extra) -> Offer:
    return Offer.model_validate({"offer_id": oid, "name": oid, "channels": ["web", "email"],
                                 "value": 10, "cost": 0, **extra})


def person() -> str:
    return f"p-{uuid.uuid4().hex[:10]}"


def made(reservation) -> list[str]:
    return reservation.made


async def test_the_script_chooses_as_exploration_choose_on_the_allowed(redis):
    book = ContactBook(redis, FP)
    rng = random.Random(7)
    for _ in range(400):
        n = rng.randint(1, 8)
        ranked = [offer(f"o{i}", contact={"stop_after_accept": True}) for i in range(n)]
        blocked = [rng.random() < 0.3 for _ in range(n)]
        limit = rng.randint(1, 5)
        epsilon = rng.choice([0.0, 0.05, 0.5, 1.0, rng.random()])
        u = rng.choice([rng.random(), epsilon, max(0.0, epsilon - 1e-12), 0.0])
        r = rng.choice([rng.random(), 0.0, 0.999999999, rng.randint(0, 7) / 8])
        pid = person()
        for o, b in zip(ranked, blocked, strict=True):
            if b:
                await redis.hset(keys.contacts(FP.profile(pid)), f"accepted:{o.offer_id}", 1)
        got = await book.reserve(pid, ranked, limit, NOW, channel=Channel.WEB,
                                 epsilon=epsilon, u=u, r=r)
        allowed = [o.offer_id for o, b in zip(ranked, blocked, strict=True) if not b]
        want = choose(len(allowed), limit, epsilon, u, r)
        case = (n, blocked, limit, epsilon, u, r)
        assert made(got) == [allowed[i] for i in want.made], case
        assert got.explored == want.explored, case
        assert got.probabilities == dict(zip(allowed, probabilities(len(allowed), limit,
                                                                    epsilon), strict=True))
        assert all(got.verdicts[o.offer_id] == "accepted"
                   for o, b in zip(ranked, blocked, strict=True) if b)
        assert {v for o, v in got.verdicts.items() if o in allowed} <= {"made", "not_chosen"}


async def test_twenty_at_once_pass_a_cap_of_one_once(redis):
    book = ContactBook(redis, FP)
    pid, once = person(), offer("once", contact={"max": 1, "days": 7})
    results = await asyncio.gather(*(book.reserve(pid, [once, offer("other")], 1, NOW,
                                                  channel=ch)
                                     for ch in [WEB, MOBILE] * 10))
    assert sum(made(r) == ["once"] for r in results) == 1
    assert all(made(r) == ["other"] and r.verdicts["once"] == "capped"
               for r in results if made(r) != ["once"])


async def test_twenty_at_once_pass_a_rule_of_one_once(redis):
    book = ContactBook(redis, FP, [ContactRule(name="email-once", channel="email", max=1,
                                               days=7)])
    pid = person()
    ranked = [offer("a"), offer("b"), offer("help", kind="service")]
    results = await asyncio.gather(*(book.reserve(pid, ranked, 2, NOW + timedelta(seconds=i),
                                                  channel=EMAIL) for i in range(20)))
    passed = [r for r in results if made(r) == ["a", "b"]]
    assert len(passed) == 1
    for r in results:
        if r is not passed[0]:  # service messages are never held back by the policy
            assert made(r) == ["help"]
            assert r.verdicts["a"] == r.verdicts["b"] == "rule:email-once"
            assert r.reasons["a"] == ("contact policy 'email-once': already 1 marketing email "
                                      "in 7 days (any offer)")


async def test_the_policy_counts_decisions_per_medium_and_across_channels(redis):
    book = ContactBook(redis, FP, [ContactRule(name="email-weekly", channel="email", max=2,
                                               days=7),
                                   ContactRule(name="sms-weekly", channel="sms", max=1, days=7),
                                   ContactRule(name="any-weekly", max=4, days=7)])
    pid, ranked = person(), [offer("a"), offer("b"), offer("c")]

    async def decide(channel, at, sms=False, limit=3, candidates=ranked):
        return await book.reserve(pid, candidates, limit, at, channel=channel, sms=sms)

    first = await decide(EMAIL, NOW)
    assert made(first) == ["a", "b", "c"]  # three offers in one email: one email
    assert made(await decide(EMAIL, NOW + timedelta(hours=1), limit=1)) == ["a"]
    third = await decide(EMAIL, NOW + timedelta(hours=2))
    assert made(third) == [] and set(third.verdicts.values()) == {"rule:email-weekly"}
    assert third.reasons["a"].startswith("contact policy 'email-weekly': already 2 marketing "
                                         "emails in 7 days")
    assert made(await decide(MOBILE, NOW + timedelta(hours=3), sms=True)) == ["a", "b", "c"]
    sms = await decide(MOBILE, NOW + timedelta(hours=4), sms=True)
    assert set(sms.verdicts.values()) == {"rule:sms-weekly"}
    assert made(await decide(WEB, NOW + timedelta(hours=5))) == ["a", "b", "c"]  # 4th contact
    web = await decide(WEB, NOW + timedelta(hours=6))
    assert set(web.verdicts.values()) == {"rule:any-weekly"}
    assert "4 marketing contacts on any channel in 7 days" in web.reasons["b"]
    # A decision that made nothing marketing is no contact; a week on, the counts are gone.
    assert made(await decide(WEB, NOW + timedelta(hours=7),
                             candidates=[offer("info", kind="service")])) == ["info"]
    assert made(await decide(EMAIL, NOW + timedelta(days=7, hours=1))) == ["a", "b", "c"]
    assert made(await book.reserve(person(), ranked, 1, NOW, channel=EMAIL)) == ["a"]


async def test_budgets_are_paced_through_the_day(redis):
    book = ContactBook(redis, FP, ahead=0)
    paced = offer("paced", budget={"per_day": 24})
    ranked = [paced, offer("fallback")]
    day = datetime(2026, 3, 3, tzinfo=UTC)
    for hour in range(24):
        at = day + timedelta(hours=hour, minutes=30)
        results = [await book.reserve(person(), ranked, 1, at, channel=WEB) for _ in range(3)]
        # One more opens each hour; the others take the next candidate.
        assert [made(r) for r in results] == [["paced"], ["fallback"], ["fallback"]], hour
        assert results[1].verdicts["paced"] == "budget"
        assert results[1].reasons["paced"] == (f"daily budget: {hour + 1} of 24 made so far "
                                               f"today, paced to {hour + 1} by now")
    midnight = day + timedelta(days=1)  # a new day, a new budget (none open at 0:00 sharp)
    assert made(await book.reserve(person(), ranked, 1, midnight, channel=WEB)) == ["fallback"]
    assert made(await book.reserve(person(), ranked, 1, midnight + timedelta(minutes=1),
                                   channel=WEB)) == ["paced"]
    assert 0 < await redis.ttl(keys.offer_budget("paced", "made", 20515)) <= 2 * 86400


async def test_concurrent_decisions_never_spend_over_the_paced_cap(redis):
    book = ContactBook(redis, FP, [ContactRule(name="email-weekly", channel="email", max=1,
                                               days=7)], ahead=0)
    paced = offer("paced", budget={"per_day": 24})
    at = datetime(2026, 3, 4, 2, 30, tzinfo=UTC)  # paced to 3 by now
    people = [person() for _ in range(20)]
    results = await asyncio.gather(*(book.reserve(p, [paced], 1, at, channel=EMAIL)
                                     for p in people))
    assert sum(made(r) == ["paced"] for r in results) == 3
    assert await redis.get(keys.offer_budget("paced", "made", 20516)) == b"3"
    for p, r in zip(people, results, strict=True):
        if not made(r):  # dropped at the count (or before): no trace in their history
            assert r.verdicts["paced"] == "budget"
            assert await redis.hgetall(keys.contacts(FP.profile(p))) == {}
            assert made(await book.reserve(p, [offer("x")], 1, at, channel=EMAIL)) == ["x"]


async def test_outcomes_count_once_and_acceptances_spend_accepted_budgets(redis):
    book = ContactBook(redis, FP, ahead=1)
    gift = offer("gift", budget={"per_day": 2, "counts": "accepted"})
    pids = [person() for _ in range(3)]
    for i, pid in enumerate(pids[:2]):
        assert made(await book.reserve(pid, [gift], 1, NOW, channel=WEB)) == ["gift"]
        for _ in range(2):  # the same acceptance twice: counted once
            new = await book.record(pid, f"d{i}", "a1", "gift", "accepted", NOW, offer=gift)
            assert new is (_ == 0)
    assert await redis.get(keys.offer_budget("gift", "accepted", 20514)) == b"2"
    spent = await book.reserve(pids[2], [gift], 1, NOW, channel=WEB)
    assert spent.verdicts["gift"] == "budget"
    assert spent.reasons["gift"] == ("daily budget: 2 of 2 accepted so far today, paced to 2 "
                                     "by now")
    # Rejections pause, once each.
    nag = offer("nag", contact={"pause_after_rejections": 1, "pause_days": 30})
    pid = pids[0]
    assert made(await book.reserve(pid, [nag], 1, NOW, channel=WEB)) == ["nag"]
    assert await book.record(pid, "d9", "a1", "nag", "rejected", NOW)
    assert not await book.record(pid, "d9", "a1", "nag", "rejected", NOW)
    later = await book.reserve(pid, [nag], 1, NOW + timedelta(days=29), channel=WEB)
    assert later.verdicts["nag"] == "paused"
    assert made(await book.reserve(pid, [nag], 1, NOW + timedelta(days=31),
                                   channel=WEB)) == ["nag"]


async def test_an_action_refused_at_the_count_is_dropped_and_taken_off_the_history(redis):
    """As when another decision spent the budget between this one's read and its count."""
    book = ContactBook(redis, FP, [ContactRule(name="email-weekly", channel="email", max=1,
                                               days=7)], ahead=0)

    async def unread(offers, at):
        return {}

    book.budgets.spent = unread
    at = datetime(2026, 3, 4, 2, 30, tzinfo=UTC)
    await redis.set(keys.offer_budget("paced", "made", 20516), 3)
    paced, other = offer("paced", budget={"per_day": 24}), offer("other")
    alone = await book.reserve(pid := person(), [paced], 1, at, channel=EMAIL)
    assert alone.verdicts == {"paced": "budget"} and alone.probabilities == {"paced": 1.0}
    assert alone.reasons["paced"] == ("daily budget: 3 of 24 made so far today, paced to 3 "
                                      "by now")
    assert await redis.hgetall(keys.contacts(FP.profile(pid))) == {}  # no email counted
    both = await book.reserve(pid, [paced, other], 2, at, channel=EMAIL)
    assert both.verdicts == {"paced": "budget", "other": "made"}  # the slot is not refilled
    history = await redis.hgetall(keys.contacts(FP.profile(pid)))
    assert set(history) == {b"made:other", b"sent:email", b"sent:*"}
    assert (await book.reserve(pid, [other], 1, at, channel=EMAIL)).verdicts == {
        "other": "rule:email-weekly"}


async def test_through_the_service_the_trace_says_which_policy_or_budget_held_back(
        stack, redis):
    admin, channel, agent = ({"Authorization": f"Bearer dev-{r}"}
                             for r in ("admin", "channel", "agent"))
    settings = NextActionSettings(kafka_bootstrap=stack.kafka_bootstrap,
                                  redis_url=redis_url(stack, DB), dev_keys=True)
    pid = person()
    await redis.set(ProfileLayout().profile(pid), CustomerProfile(
        customer_id=pid, metrics=Metrics(orders=3, revenue=300), consents={
            "marketing_email": Consent(value=True, at=datetime.now(UTC))}).to_stored())
    async with serving(build(settings)) as client:
        await without_exploration(client)
        assert (await client.put("/v1/offers", headers=admin, json=[
            {"offer_id": "news", "name": "News", "channels": ["email"], "value": 50, "cost": 1},
            {"offer_id": "gift", "name": "Gift", "channels": ["web"], "value": 50, "cost": 1,
             "budget": {"per_day": 1, "counts": "accepted"}},
            {"offer_id": "help", "name": "Help", "channels": ["email", "web"], "value": 10,
             "cost": 0.1, "kind": "service"}])).status_code == 200

        async def decide(ch):
            body = (await client.post("/v1/next-best-action", headers=channel, json={
                "customer_id": pid, "channel": ch, "limit": 1})).json()
            trace = (await client.get(f"/v1/decisions/{body['decision_id']}",
                                      headers=agent)).json()["trace"]
            return body, [a["offer_id"] for a in body["actions"]], {
                t["offer_id"]: t["reasons"][-1] for t in trace}

        assert [(await decide("email"))[1] for _ in range(2)] == [["news"], ["news"]]
        _, actions, why = await decide("email")  # the default policy: 2 emails a week
        assert actions == ["help"]
        assert why["news"] == ("contact policy 'email-weekly': already 2 marketing emails in "
                               "7 days (any offer)")
        body, actions, _ = await decide("web")
        assert actions == ["gift"]
        assert (await client.post("/v1/outcomes", headers=channel, json={
            "decision_id": body["decision_id"], "action_id": body["actions"][0]["action_id"],
            "outcome": "accepted"})).status_code == 202
        _, actions, why = await decide("web")
        assert actions == ["help"]
        assert why["gift"] == ("daily budget: 1 of 1 accepted so far today, paced to 1 by now")


async def test_erasure_forgets_the_whole_contact_history(redis):
    book = ContactBook(redis, FP, [ContactRule(name="any", max=9, days=7)])
    pid = person()
    ranked = [offer("a", contact={"stop_after_accept": True}), offer("b")]
    assert made(await book.reserve(pid, ranked, 2, NOW, channel=EMAIL)) == ["a", "b"]
    await book.record(pid, "d", "a1", "a", "accepted", NOW)
    await book.record(pid, "d", "a2", "b", "rejected", NOW)
    assert len(await redis.hgetall(keys.contacts(FP.profile(pid)))) == 6  # made, sent, ...
    store = SimpleNamespace(layout=ProfileLayout())  # only its forgetting, on Redis
    eraser = Eraser(store, None, redis, None, FP, None)
    await eraser._forget(CustomerProfile(customer_id=pid), [])
    assert not await redis.exists(keys.contacts(FP.profile(pid)))
