"""The ops dashboard's demand in a real browser: a console process of its own (over the
test stack's Kafka and services) whose profile service is a stand-in answering with
demand made by the profile's own code (tests/console_demand_fakes.py), since a real
surge needs hours of history. The page shows one card per incident with its members
(kept open across the pushed re-renders) and the lead's forecast band, the forecast
quality, and keeps working when the profile service goes away."""

from __future__ import annotations

import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
import uvicorn
from playwright.sync_api import expect

from rapport.shared.localstack import Stack
from tests.browser.conftest import sign_in
from tests.console_demand_fakes import build, stub_profile

DOCS = Path(__file__).resolve().parents[2] / "docs"
# Pixels of the interval band: its fill, rgba(224,122,16,.18), on the transparent canvas.
BAND_PIXELS = """el => { const c = el.querySelector('canvas'); const g = c.getContext('2d');
  const d = g.getImageData(0, 0, c.width, c.height).data; let n = 0;
  for (let i = 0; i < d.length; i += 4)
    if (Math.abs(d[i] - 224) < 8 && Math.abs(d[i+1] - 122) < 8 && Math.abs(d[i+2] - 16) < 8
        && d[i+3] > 30 && d[i+3] < 60) n++;
  return n; }"""


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.fixture(scope="module")
def profile_stub() -> Iterator[uvicorn.Server]:
    port = _free_port()
    server = uvicorn.Server(uvicorn.Config(stub_profile(build()), host="127.0.0.1",
                                           port=port, log_level="warning"))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 10
    while not server.started and time.monotonic() < deadline:
        time.sleep(0.05)
    server.url = f"http://127.0.0.1:{port}"  # type: ignore[attr-defined]
    yield server
    server.should_exit = True
    thread.join(10)


@pytest.fixture(scope="module")
def console(system: Stack, profile_stub: Any) -> Iterator[str]:
    port = _free_port()
    env = {**system.service_env(), "RAPPORT_PROFILE_URL": profile_stub.url,
           "RAPPORT_CONSOLE_PORT": str(port)}
    log = open(system.logs / "console-demand.log", "ab")
    proc = subprocess.Popen([sys.executable, "-m", "rapport.console"], env=env,
                            stdout=log, stderr=subprocess.STDOUT)
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            assert proc.poll() is None, "the console exited; see console-demand.log"
            try:
                if httpx.get(f"{url}/readyz", timeout=2).status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            time.sleep(0.3)
        yield url
    finally:
        proc.terminate()
        proc.wait(15)
        log.close()


class _At:
    """``sign_in`` takes a stack; this one knows only our console's address."""

    def __init__(self, url: str) -> None:
        self._url = url

    def url(self, _service: str) -> str:
        return self._url


def test_the_ops_page_shows_incidents_with_members_and_a_forecast_band(console,
                                                                       profile_stub, page):
    page.set_viewport_size({"width": 1366, "height": 900})
    sign_in(page, _At(console), "ops?every=1", "dev-ops")
    cards = page.locator("#incidents .incident")
    expect(cards).to_have_count(2, timeout=15000)
    shoes = cards.filter(has_text="category shoes · orders")
    expect(shoes.locator(".inc-head")).to_contain_text("▲ up")
    expect(shoes.locator(".inc-head")).to_contain_text("4 series")
    expect(cards.filter(has_text="category hats · views")).to_contain_text("▼ down")
    expect(shoes.locator(".inc-side")).to_contain_text("next hour")
    expect(shoes.locator(".inc-side")).to_contain_text("next day")

    members = shoes.locator("details.members")
    members.locator("summary").click()
    rows = members.locator("tbody tr")
    expect(rows).to_have_count(4)
    for label in ("category shoes · orders", "product s1 · orders", "all demand · orders",
                  "region west · orders"):
        expect(members).to_contain_text(label)
    before = page.locator(".stamp").get_attribute("data-updated")
    page.wait_for_function("b => document.querySelector('.stamp').dataset.updated !== b",
                           arg=before, timeout=10000)
    expect(members).to_have_attribute("open", "")  # still open after a pushed re-render

    band = shoes.locator(".band")
    expect(band.locator("canvas")).to_have_count(1)
    page.wait_for_timeout(300)
    assert band.evaluate(BAND_PIXELS) > 200, "no interval band drawn"
    quality = page.locator("#forecast-quality")
    expect(quality).to_contain_text("next hour")
    expect(quality).to_contain_text("6 series")
    expect(quality.locator("tbody tr")).to_have_count(2)
    page.screenshot(path=str(DOCS / "console-ops-incidents.png"), full_page=True)

    profile_stub.should_exit = True  # the profile service goes away: the page goes on
    expect(page.locator("#panels")).to_contain_text("profile is not reachable",
                                                    timeout=15000)
    expect(page.locator("#incidents")).to_contain_text("no active incident")
    expect(page.locator("#kpi-accepted")).to_be_visible()
