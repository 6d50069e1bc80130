"""The console in a real browser: the agent screen (sign in, search, the 360, an
outcome recorded, a screen-pop) and the ops dashboard (live), and who is refused."""

from __future__ import annotations

import re
import time
import uuid
from datetime import UTC, datetime
from pathlib import Path

import httpx
from playwright.sync_api import expect

from tests.browser.conftest import AGENT, new_customer, send, sign_in

DOCS = Path(__file__).resolve().parents[2] / "docs"


def accepted_of(system, offer_id: str) -> int:
    got = httpx.get(f"{system.url('next-action')}/v1/reports/offers", timeout=5,
                    headers={"Authorization": "Bearer dev-ops"}).json()
    return sum(o["acceptances"] for o in got["offers"] if o["offer_id"] == offer_id)


def test_an_agent_finds_a_customer_sees_the_360_and_records_an_accept(system, page,
                                                                      record_property):
    who = new_customer(system)
    sign_in(page, system, "agent", "dev-agent")
    expect(page.locator("#q")).to_be_visible()
    assert "dev-agent" not in page.url
    cookie = next(c for c in page.context.cookies() if c["name"] == "rapport_session")
    assert cookie["httpOnly"] and cookie["sameSite"] == "Strict"
    assert cookie["value"] != "dev-agent"

    page.fill("#q", "nobody-" + uuid.uuid4().hex)
    page.keyboard.press("Enter")
    expect(page.locator("#no-match")).to_contain_text("No customer matches")

    for kind in ("email", "phone", "loyalty_id", "user_id"):
        query = who[kind]
        page.fill("#q", query)
        started = time.perf_counter()
        # Each search renders a fresh decision: wait for this one, so what is read
        # below comes from the last render, not from the one it is replacing.
        with page.expect_response(lambda r: r.url.endswith("/agent/search")) as answer:
            page.keyboard.press("Enter")
        rendered = re.search(r'name="decision_id" value="([^"]+)"', answer.value.text())
        expect(page.locator("#customer-name")).to_have_text("Ada Lovelace")
        expect(page.locator(".action").first).to_be_visible()
        expect(page.locator(".action input[name=decision_id]").first).to_have_value(
            rendered.group(1))
        # A figure, not a bound (no timed tests): the 360 and the actions on screen.
        record_property(f"search_by_{kind}_to_360_ms",
                        round((time.perf_counter() - started) * 1000))
        assert query not in page.url  # searched by a POST form
    expect(page.locator(".timeline li").first).to_contain_text("Ticket Created")
    expect(page.locator(".orders")).to_contain_text("Order Completed")
    expect(page.locator(".scores")).to_contain_text("churn risk")
    page.locator(".action").first.wait_for()

    first = page.locator(".action").first
    action_id = first.locator("input[name=action_id]").get_attribute("value")
    decision_id = first.locator("input[name=decision_id]").get_attribute("value")
    decision = httpx.get(f"{system.url('next-action')}/v1/decisions/{decision_id}",
                         headers=AGENT, timeout=5).json()
    offer_id = next(a["offer_id"] for a in decision["actions"] if a["action_id"] == action_id)
    before = accepted_of(system, offer_id)
    first.locator("button.accept").click()
    expect(first.locator(".result")).to_contain_text("recorded as accepted")
    page.locator(".action").nth(1).locator("button.decline").click()
    expect(page.locator(".action").nth(1).locator(".result")).to_contain_text("rejected")

    page.evaluate("window.scrollTo(0, 0)")
    page.screenshot(path=str(DOCS / "console-agent.png"))
    page.click("#why")
    expect(page.locator(".trace table")).to_be_visible()
    expect(page.locator("#customer-name")).to_be_in_viewport()  # the name stays in view

    # The Accept went through next-action's API: its offers report counts it.
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline and accepted_of(system, offer_id) == before:
        time.sleep(0.5)
    assert accepted_of(system, offer_id) == before + 1

    page.click("#signout")
    expect(page.locator("#key")).to_be_visible()


def test_a_call_started_through_ingest_pops_the_customer_on_every_agent_screen(
        system, browser, record_property):
    who = new_customer(system, name="Grace Hopper")
    screens = []
    for _ in range(2):
        context = browser.new_context(viewport={"width": 1366, "height": 768})
        tab = context.new_page()
        sign_in(tab, system, "agent", "dev-agent")
        expect(tab.locator("#call-status")).to_contain_text("Listening")
        screens.append((context, tab))
    send(system, [{"type": "track", "userId": who["user_id"], "event": "Call Started",
                   "timestamp": datetime.now(UTC).isoformat(),
                   "context": {"channel": "call_center"},
                   "properties": {"reason": "billing question"}}])
    sent = time.perf_counter()
    for _, tab in screens:
        expect(tab.locator(".call-banner")).to_be_visible(timeout=5000)
        expect(tab.locator("#customer-name")).to_have_text("Grace Hopper", timeout=5000)
        expect(tab.locator(".call-banner")).to_contain_text("billing question")
    record_property("screen_pop_ms", round((time.perf_counter() - sent) * 1000))
    for context, _ in screens:
        context.close()


def test_the_ops_page_updates_by_itself_while_events_flow(system, page):
    sign_in(page, system, "ops", "dev-ops")
    expect(page.locator("#kpi-accepted")).to_be_visible(timeout=10000)
    before = int(page.locator("#kpi-accepted").inner_text())
    for i in range(5):
        send(system, [{"type": "track", "anonymousId": f"ops-{uuid.uuid4().hex[:6]}",
                       "event": "Product Viewed", "properties": {"product_id": f"p{i}",
                                                                 "category": "audio",
                                                                 "price": 10.0}}
                      for _ in range(20)])
    bad = httpx.post(f"{system.url('ingest')}/v1/batch", auth=("dev-write-key", ""),
                     json={"batch": [{"type": "track", "userId": "u", "timestamp": "nope",
                                      "event": "X"}]}, timeout=5)
    assert bad.status_code == 200
    # No reload, no click: the panels are pushed (SSE) and catch up with the traffic.
    page.wait_for_function(
        "n => parseInt(document.getElementById('kpi-accepted').textContent) >= n",
        arg=before + 100, timeout=20000)
    expect(page.locator("#updated")).to_contain_text("updated")
    expect(page.locator("#topic-rates")).to_contain_text("rapport.touchpoints.v1")
    expect(page.locator("#kpi-dead")).not_to_have_text("0", timeout=15000)
    page.wait_for_timeout(2500)
    page.screenshot(path=str(DOCS / "console-ops.png"))


def test_a_bad_key_is_refused(system, page):
    sign_in(page, system, "agent", "not-a-key")
    expect(page.locator("#signin-error")).to_contain_text("not known")
    assert not [c for c in page.context.cookies() if c["name"] == "rapport_session"]


def test_a_channel_key_is_refused_on_ops_and_on_the_agent_screen(system, page):
    sign_in(page, system, "ops", "dev-channel")
    expect(page.locator("#signin-error")).to_contain_text("channel key cannot open")
    sign_in(page, system, "agent", "dev-channel")
    expect(page.locator("#signin-error")).to_contain_text("channel key cannot open")
    sign_in(page, system, "agent", "dev-agent")
    expect(page.locator("#q")).to_be_visible()
    page.goto(f"{system.url('console')}/ops")  # an agent's session does not open /ops
    expect(page.locator("#key")).to_be_visible()
