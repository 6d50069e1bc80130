"""Browser tests: headless Chromium (Debian's ``chromium`` package, installed here when
missing) driven by Playwright for Python, against the real local stack of the test
profile with all five services."""

from __future__ import annotations

import os
import shutil
import subprocess
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import orjson
import pytest

from rapport.shared.localstack import Stack
from tests.helpers import NO_EXPLORATION

CHROMIUM = "/usr/bin/chromium"
ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
        "--disable-background-networking", "--disable-component-update", "--disable-sync"]
ADMIN = {"Authorization": "Bearer dev-admin"}
AGENT = {"Authorization": "Bearer dev-agent"}
ROOT = Path(__file__).resolve().parents[2]
CALL_OFFERS = [
    {"offer_id": "retention-credit", "name": "Retention credit", "kind": "retention",
     "channels": ["call_center"], "value": 30, "cost": 4},
    {"offer_id": "priority-line", "name": "Priority service line", "kind": "service",
     "channels": ["call_center"], "value": 12, "cost": 1},
    {"offer_id": "bundle-upgrade", "name": "Bundle upgrade", "kind": "cross_sell",
     "channels": ["call_center", "web"], "value": 45, "cost": 6},
]


def _ensure_chromium() -> None:
    if Path(CHROMIUM).exists():
        return
    if shutil.which("apt-get") is None:
        pytest.skip("no chromium and no apt-get to install it")
    env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
    sudo = [] if os.geteuid() == 0 else ["sudo"]
    subprocess.run([*sudo, "apt-get", "update", "-qq"], check=True, env=env)
    subprocess.run([*sudo, "apt-get", "install", "-y", "-qq", "chromium"], check=True,
                   env=env, stdout=subprocess.DEVNULL)


@pytest.fixture(scope="package")
def system(stack: Stack) -> Iterator[Stack]:
    """The five services as real processes (the console among them)."""
    os.environ.setdefault("RAPPORT_REFIT_FIRST_DELAY_S", "86400")
    stack.start_services()
    try:
        stack.wait_services()
        with httpx.Client(base_url=stack.url("next-action"), timeout=10) as http:
            offers = orjson.loads((ROOT / "deploy/local/sample-offers.json").read_bytes())
            assert http.put("/v1/offers", headers=ADMIN,
                            json=[*CALL_OFFERS, *offers]).status_code == 200
            assert http.put("/v1/policies", headers=ADMIN,
                            json=NO_EXPLORATION).status_code == 200
        yield stack
    finally:
        stack.stop_services()


@pytest.fixture(scope="package")
def browser(system: Stack) -> Iterator[Any]:
    _ensure_chromium()
    from playwright.sync_api import sync_playwright

    with sync_playwright() as pw:
        chromium = pw.chromium.launch(executable_path=CHROMIUM, args=ARGS)
        yield chromium
        chromium.close()


@pytest.fixture
def page(browser: Any) -> Iterator[Any]:
    context = browser.new_context(viewport={"width": 1366, "height": 768})
    tab = context.new_page()
    yield tab
    context.close()


def send(stack: Stack, batch: list[dict[str, Any]]) -> None:
    got = httpx.post(f"{stack.url('ingest')}/v1/batch", json={"batch": batch},
                     auth=("dev-write-key", ""), timeout=10)
    assert got.status_code == 200 and got.json()["accepted"] == len(batch), got.text


def new_customer(stack: Stack, name: str = "Ada Lovelace") -> dict[str, str]:
    """A customer with identities, orders and a service contact, visible on the API."""
    tag = uuid.uuid4().hex[:8]
    who = {"user_id": f"cust-{tag}", "email": f"ada.{tag}@example.com",
           "phone": f"+4420{int(tag, 16) % 10**8:08d}", "loyalty_id": f"L-{tag}",
           "name": name}
    t0 = datetime.now(UTC) - timedelta(days=40)
    at = lambda d: (t0 + timedelta(days=d)).isoformat()  # noqa: E731
    uid = who["user_id"]
    send(stack, [
        {"type": "identify", "userId": uid, "timestamp": at(0), "traits": {
            "name": name, "email": who["email"], "phone": who["phone"],
            "loyalty_id": who["loyalty_id"], "region": "north",
            "consent": {"marketing_email": True, "marketing_sms": False,
                        "personalization": True}}},
        {"type": "track", "userId": uid, "event": "Product Viewed", "timestamp": at(1),
         "properties": {"product_id": "p-7", "category": "audio", "price": 89.0}},
        {"type": "track", "userId": uid, "event": "Order Completed", "timestamp": at(2),
         "properties": {"order_id": f"o-{tag}-1", "total": 89.0, "products": [
             {"product_id": "p-7", "category": "audio", "price": 89.0, "quantity": 1}]}},
        {"type": "track", "userId": uid, "event": "Order Completed", "timestamp": at(20),
         "context": {"channel": "store"}, "properties": {"order_id": f"o-{tag}-2",
                                                        "total": 140.0}},
        {"type": "track", "userId": uid, "event": "Ticket Created", "timestamp": at(30),
         "context": {"channel": "chat"}, "properties": {}},
    ])
    deadline = datetime.now(UTC) + timedelta(seconds=30)
    while datetime.now(UTC) < deadline:
        got = httpx.get(f"{stack.url('profile')}/v1/customers/{uid}", headers=AGENT,
                        timeout=5)
        if got.status_code == 200 and got.json()["metrics"]["touchpoints"] >= 5:
            return who
    raise AssertionError(f"profile not complete: {got.status_code} {got.text[:300]}")


def sign_in(page: Any, stack: Stack, screen: str, key: str) -> None:
    page.goto(f"{stack.url('console')}/{screen}")
    page.fill("#key", key)
    page.click("button[type=submit]")
