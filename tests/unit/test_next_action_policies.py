"""Applicability and consent: kinds, channels, placements, validity windows, and no
marketing by email or SMS without that consent, each refusal named in the trace."""

from dataclasses import replace
from datetime import UTC, datetime, timedelta

import pytest
from pydantic import ValidationError

from rapport.next_action.catalog import Catalog, OfferKind
from rapport.next_action.domain import DecisionRequest, decide
from rapport.shared.events import Channel

NOW = datetime(2026, 12, 1, 12, tzinfo=UTC)
BASE = DecisionRequest(decision_id="d1", customer_id="c1", channel=Channel.EMAIL,
                       placement=None, limit=5, profile={"consents": {}}, scores={})


def offer(oid, **extra):
    return {"offer_id": oid, "name": oid, "channels": ["email", "web", "mobile"],
            "value": 100.0, "cost": 1.0, **extra}


def made(catalog: list[dict], req: DecisionRequest = BASE) -> tuple[list[str], dict]:
    decision = decide(Catalog(offers=catalog), req, {}, NOW)
    return [a.offer_id for a in decision.actions], {t.offer_id: t for t in decision.trace}


@pytest.mark.parametrize(("kind", "consents", "allowed"), [
    ("offer", {}, False), ("offer", {"marketing_email": False}, False),
    ("offer", {"marketing_email": True}, True), ("retention", {}, False),
    ("cross_sell", {"marketing_sms": True}, False), ("service", {}, True),
    ("no_action", {}, True),
])
def test_no_marketing_by_email_without_that_consent(kind, consents, allowed):
    ids, trace = made([offer("o", kind=kind)], replace(BASE, profile={"consents": consents}))
    assert (ids == ["o"]) is allowed
    if not allowed:
        assert "no marketing_email consent" in " ".join(trace["o"].reasons)


def test_sms_is_mobile_with_the_sms_placement_or_an_sms_medium():
    sms = replace(BASE, channel=Channel.MOBILE, placement="sms")
    assert made([offer("o")], sms)[0] == []
    assert made([offer("o")], replace(sms, profile={"consents": {"marketing_sms": True}})
                )[0] == ["o"]
    by_context = replace(BASE, channel=Channel.WEB, context={"medium": "SMS"})
    assert made([offer("o")], by_context)[0] == []
    assert made([offer("o")], replace(BASE, channel=Channel.WEB))[0] == ["o"]  # the web page
    assert made([offer("o")], replace(BASE, channel=Channel.MOBILE))[0] == ["o"]  # the app


def test_an_unknown_customer_has_given_no_consent():
    assert made([offer("o"), offer("s", kind="service")], replace(BASE, profile=None)
                )[0] == ["s"]


def test_placements_and_validity_windows_apply():
    web = replace(BASE, channel=Channel.WEB, placement="home")
    catalog = [offer("any"), offer("cart", placements=["cart"]),
               offer("home", placements=["home", "cart"]),
               offer("soon", valid_from=(NOW + timedelta(days=1)).isoformat()),
               offer("over", valid_until=NOW.isoformat()),
               offer("now", valid_from=(NOW - timedelta(days=1)).isoformat(),
                     valid_until=(NOW + timedelta(seconds=1)).isoformat())]
    ids, trace = made(catalog, web)
    assert sorted(ids) == ["any", "home", "now"]
    assert "placement 'home'" in trace["cart"].reasons[0]
    assert "not valid before" in trace["soon"].reasons[0]
    assert "expired" in trace["over"].reasons[0]
    assert "offered only in placements cart" in made(catalog, replace(web, placement=None)
                                                     )[1]["cart"].reasons[0]


@pytest.mark.parametrize("bad", [
    {"kind": "bribe"}, {"valid_from": "2026-12-01T00:00:00"},
    {"valid_from": "2026-12-02T00:00:00Z", "valid_until": "2026-12-01T00:00:00Z"},
    {"placements": "home"},
])
def test_a_bad_offer_is_refused(bad):
    with pytest.raises(ValidationError):
        Catalog(offers=[offer("o", **bad)])


def test_kinds_default_to_offer_and_say_if_they_are_marketing():
    o = Catalog(offers=[offer("o")]).offers[0]
    assert o.kind is OfferKind.OFFER and o.marketing
    assert not Catalog(offers=[offer("s", kind="service")]).offers[0].marketing
