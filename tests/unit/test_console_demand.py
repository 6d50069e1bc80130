"""The ops page's demand: incidents as cards (lead charted with its forecast band, the
members listed), the console's own grouping when the profile service has no incidents
route, the forecast quality summary, and a page that still renders when the profile
service is down or answers 404."""

from __future__ import annotations

import httpx
import pytest

from rapport.console import ops, ops_demand, ops_view
from rapport.console.ops_collector import Collected, Sample
from rapport.console.sessions import Session
from rapport.console.signin import TEMPLATES
from rapport.console.upstream import Upstreams
from rapport.profile.demand.series import Dimension, Metric, SeriesKey
from rapport.shared.auth import Role
from tests.console_demand_fakes import build, stub_profile

NOW = 1_796_000_000.0


@pytest.fixture(scope="module")
def data():
    return build(now=NOW)


def _card(data, incident):
    by_id = {s["id"]: s for s in data["spikes"]}
    lead = incident["lead"]
    return ops_demand.card(incident, by_id, data["series"][_field(lead)]["buckets"],
                           data["forecast"][_field(lead)])


def _field(member):
    s = member["series"]
    return SeriesKey(Dimension(s["dimension"]), s["value"], Metric(s["metric"])).field


def test_an_incident_card_names_its_lead_and_lists_its_members(data):
    shoes = next(i for i in data["incidents"] if i["category"] == "shoes")
    c = _card(data, shoes)
    assert c["lead"] == "category shoes · orders" and c["direction"] == "up"
    assert c["size"] == 4 and c["others"] == 3 and len(c["members"]) == 4
    assert [m["lead"] for m in c["members"]].count(True) == 1
    assert {m["label"] for m in c["members"]} >= {"all demand · orders", "region west · orders"}
    assert all(m["active"] and m["change"].startswith("+") for m in c["members"])
    assert c["peak"] == ops_demand.change(shoes["peak_magnitude"])
    assert c["forecast"]["next_hour"]["lower"] <= c["forecast"]["next_hour"]["expected"] \
        <= c["forecast"]["next_hour"]["upper"]
    assert c["forecast"]["mase"]["next_hour"] is not None


def test_the_chart_draws_the_forecast_band_after_the_observed_series(data):
    c = _card(data, data["incidents"][0])
    xs, observed, expected, lower, upper = c["chart"]
    seen = [i for i, v in enumerate(observed) if v is not None]
    ahead = [i for i, v in enumerate(observed) if v is None]
    assert len(seen) == 24 and len(ahead) == ops_demand.BAND_POINTS
    assert max(seen) < min(ahead) and xs == sorted(xs) and len(set(xs)) == len(xs)
    last = max(seen)  # the band grows out of the last observation
    assert expected[last] == lower[last] == upper[last] == observed[last]
    assert all(lower[i] <= expected[i] <= upper[i] for i in ahead)
    assert any(upper[i] > lower[i] for i in ahead)


def test_a_band_degrades_without_history_or_intervals():
    assert ops_demand.band([], []) is None
    only = ops_demand.band([], [{"at": "2026-01-01T00:00:00+00:00", "expected": 3},
                                {"at": "2026-01-01T00:05:00+00:00", "expected": 4}])
    assert only[1] == [None, None] and only[3] == [3, 4] == only[4]  # no interval: a line
    stale = ops_demand.band([{"start": "2026-01-01T00:05:00+00:00", "value": None},
                             {"start": "bad"}], [{"at": "2026-01-01T00:00:00+00:00"}])
    assert stale is None  # one bucket and a forecast from before it


def test_spikes_are_grouped_by_their_incident_when_the_route_is_missing(data):
    rebuilt = ops_demand.from_spikes([*data["spikes"], {"id": "x1", "direction": "up",
                                                        "series": {"dimension": "segment",
                                                                   "value": "vip"},
                                                        "magnitude": 0.5}])
    sizes = sorted(i["size"] for i in rebuilt)
    assert sizes == [1, 2, 4]
    shoes = next(i for i in rebuilt if i["size"] == 4)
    assert shoes["lead"]["series"]["value"] == "shoes"


def test_the_quality_summary_reads_mase_and_coverage_per_horizon(data):
    from rapport.profile.demand import forecast_view

    q = ops_demand.quality(forecast_view.summary(data["quality"]))
    assert q["series"] == 6 and [r["horizon"] for r in q["rows"]] == ["next hour", "next day"]
    assert all(r["mase_mean"] is not None and 0 <= r["coverage"] <= 1 for r in q["rows"])
    assert len(q["rows"][0]["worst"]) == 3 and ops_demand.quality({}) is None


def test_a_card_of_almost_nothing_still_renders():
    c = ops_demand.card({}, {}, [], None)
    assert c["lead"] == "? ?" and c["members"] == [] and c["size"] == 0
    assert c["chart"] is None and c["forecast"]["next_hour"] is None


def _upstreams(app) -> Upstreams:
    up = Upstreams({"profile": "http://profile", "next-action": "http://profile"}, 2.0)
    up._http = httpx.AsyncClient(transport=httpx.ASGITransport(app=app))
    return up


def _render(demand, problems):
    data = Collected()
    data.samples.append(Sample(NOW, {("rapport.touchpoints.v1", 0): 5}, {}, {}))
    view = ops_view.build(data, demand, None, problems)
    return TEMPLATES.get_template("_ops_panels.html").render(v=view)


SESSION = Session(key="dev-ops", role=Role.OPS, expires=NOW * 2)


async def test_the_panels_show_incidents_from_the_profile_service(data):
    stub = stub_profile(data)
    demand, _, problems = await ops._api_parts(_upstreams(stub), SESSION)
    assert demand["grouped"] and len(demand["incidents"]) == 2
    assert stub.state.calls and all("dev-ops" not in c for c in stub.state.calls)
    html = _render(demand, problems)
    assert "category shoes · orders" in html and 'class="band"' in html
    assert "4 members" in html and "Forecast quality" in html


async def test_an_older_profile_service_without_incidents_still_groups_spikes(data):
    demand, _, problems = await ops._api_parts(
        _upstreams(stub_profile(data, incidents_route=False)), SESSION)
    assert not demand["grouped"] and sorted(c["size"] for c in demand["incidents"]) == [2, 4]
    assert not [p for p in problems if "profile" in p]  # a 404 is no problem to show
    assert "grouped by the console" in _render(demand, problems)


async def test_the_page_renders_when_the_profile_service_is_down():
    up = Upstreams({"profile": "http://127.0.0.1:9", "next-action": "http://127.0.0.1:9"},
                   0.5)
    demand, report, problems = await ops._api_parts(up, SESSION)
    assert demand["incidents"] == [] and demand["quality"] is None and report is None
    assert len(problems) == 2 and any("profile is not reachable" in p for p in problems)
    html = _render(demand, problems)
    assert "no active incident" in html and "profile is not reachable" in html


def test_an_ended_lead_links_to_no_audience(data):
    shoes = next(i for i in data["incidents"] if i["category"] == "shoes")
    others = {s["id"]: s for s in data["spikes"] if s["id"] != shoes["lead"]["id"]}
    c = ops_demand.card(shoes, others, [], None)
    assert c["lead_id"] is None and c["chart"] is None
    assert [m["active"] for m in c["members"] if m["lead"]] == [False]
