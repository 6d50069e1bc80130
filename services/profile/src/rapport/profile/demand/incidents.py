"""Correlated spike alerts grouped into incidents: one surge that moves a category, its
products, the total and a region is one incident with its members, not a dozen alerts.

Pure: the closer calls :func:`advance` once per closed bucket with the alerts open
after it and those that ended in it, and stores the :class:`Book` with the alerts in
the same commit. The outcome depends only on the book and on the *set* of alerts (they
are taken in a canonical order), and an incident's id is a hash of the alert that
founded it, so a close redone after a crash gives the same incidents and ids.

An alert joins an open incident that started at most ``window_buckets`` before it, in
the same direction, and related to it: an alert with a category (the category's own
series, or a product carrying it) joins an incident of that category, else one with
no category yet; an alert without one (total, region, channel, segment) joins the
largest such incident moving in the same buckets. An incident ends when its last
member ends.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

_SPECIFIC = {"category": 3, "product": 2, "segment": 1, "region": 1, "channel": 1,
             "total": 0}


@dataclass(frozen=True)
class IncidentPolicy:
    window_buckets: int = 3
    """An alert joins an incident that started at most this many buckets before it."""


@dataclass
class Book:
    """The open incidents (id -> incident) and those ended since the last commit."""

    open: dict[str, dict[str, Any]] = field(default_factory=dict)
    ended: dict[str, dict[str, Any]] = field(default_factory=dict)

    def member_of(self) -> dict[str, str]:
        """Alert id -> id of the open incident it belongs to."""
        return {m["id"]: i for i, inc in self.open.items() for m in inc["members"]}


def incident_id(founder_alert_id: str) -> str:
    return hashlib.blake2b(f"incident@{founder_alert_id}".encode(),
                           digest_size=8).hexdigest()


def _epoch(text: str) -> float:
    return datetime.fromisoformat(text).timestamp()


def iso(epoch_s: float) -> str:
    return datetime.fromtimestamp(epoch_s, UTC).isoformat()


def _category(alert: Mapping[str, Any]) -> str | None:
    series = alert["series"]
    if series["dimension"] == "category":
        return str(series["value"])
    category = alert.get("category")
    return None if category is None else str(category)


def _peak(alert: Mapping[str, Any]) -> float:
    return float(alert.get("peak", {}).get("magnitude", alert.get("magnitude", 0.0)))


def _member(alert: Mapping[str, Any]) -> dict[str, Any]:
    out = {"id": alert["id"], "series": alert["series"], "started_at": alert["started_at"],
           "ended_at": alert.get("ended_at"), "magnitude": _peak(alert)}
    category = _category(alert)
    if category is not None:
        out["category"] = category
    return out


def _lead_key(m: Mapping[str, Any]) -> tuple[int, float, str]:
    """The lead names the surge: the category's own series if it moved, else the
    member moving most (ties: the lower id, so any order gives the same lead)."""
    return (0 if m["series"]["dimension"] == "category" else 1, -abs(m["magnitude"]),
            m["id"])


def _summarised(inc: dict[str, Any], at: int) -> dict[str, Any]:
    members = sorted(inc["members"], key=lambda m: (-abs(m["magnitude"]), m["id"]))
    lead = min(members, key=_lead_key)
    ended = [m["ended_at"] for m in members]
    return {**inc, "members": members, "size": len(members), "lead": lead,
            "peak_magnitude": max((m["magnitude"] for m in members), key=abs),
            "dimensions": sorted({m["series"]["dimension"] for m in members}),
            "ended_at": None if None in ended else max(ended),
            "updated_at": iso(at)}


def _canonical(alerts: Iterable[Mapping[str, Any]]) -> list[Mapping[str, Any]]:
    """Alerts with a category first, grouped by category (the category moving most
    first), the broad ones after (most moving first): arrival order never matters."""
    alerts = list(alerts)
    strongest: dict[str, float] = {}
    for a in alerts:
        c = _category(a)
        if c is not None:
            strongest[c] = max(strongest.get(c, 0.0), abs(_peak(a)))

    def key(a: Mapping[str, Any]) -> tuple[Any, ...]:
        c = _category(a)
        group = (0, -strongest[c], c) if c is not None else (1, 0.0, "")
        return (*group, -_SPECIFIC.get(a["series"]["dimension"], 0), -abs(_peak(a)),
                a["id"])
    return sorted(alerts, key=key)


def _candidates(book: Book, alert: Mapping[str, Any], width: int,
                policy: IncidentPolicy) -> list[dict[str, Any]]:
    start = _epoch(alert["started_at"])
    return [inc for inc in book.open.values()
            if inc["direction"] == alert["direction"] and inc["ended_at"] is None
            and 0 <= start - _epoch(inc["started_at"]) <= policy.window_buckets * width]


def _best(found: list[dict[str, Any]]) -> dict[str, Any]:
    return min(found, key=lambda inc: (-abs(inc["peak_magnitude"]), inc["started_at"],
                                       inc["id"]))


def _home(book: Book, alert: Mapping[str, Any], width: int,
          policy: IncidentPolicy) -> dict[str, Any] | None:
    found = _candidates(book, alert, width, policy)
    category = _category(alert)
    if category is not None:
        same = [inc for inc in found if inc.get("category") == category]
        found = same or [inc for inc in found if inc.get("category") is None]
    return _best(found) if found else None


def advance(book: Book, at: int, width: int, open_alerts: Iterable[Mapping[str, Any]],
            ended_alerts: Iterable[Mapping[str, Any]],
            policy: IncidentPolicy = IncidentPolicy()) -> tuple[list[dict[str, Any]],
                                                               dict[str, str]]:
    """Fold one closed bucket (starting at ``at``) into the book: returns the incident
    records to publish and, for every open alert, the id of its incident."""
    open_alerts = {a["id"]: a for a in open_alerts}
    ended_alerts = {a["id"]: a for a in ended_alerts}
    # Copies: records already made (published at the end of a tick) keep what they said.
    book.open = {i: {**inc, "members": list(inc["members"])} for i, inc in book.open.items()}
    placed = book.member_of()
    founded: set[str] = set()
    grown: set[str] = set()
    for alert in _canonical(a for i, a in open_alerts.items() if i not in placed):
        home = _home(book, alert, width, policy)
        if home is None:
            iid = incident_id(alert["id"])
            home = book.open[iid] = {
                "id": iid, "direction": alert["direction"], "category": None,
                "started_at": alert["started_at"], "ended_at": None,
                "bucket_s": width, "members": [], "peak_magnitude": 0.0}
            founded.add(iid)
        home["members"].append(_member(alert))
        if home.get("category") is None and _category(alert) is not None:
            home["category"] = _category(alert)
        home["peak_magnitude"] = max(home["peak_magnitude"], _peak(alert), key=abs)
        placed[alert["id"]] = home["id"]
        grown.add(home["id"])
    records: list[dict[str, Any]] = []
    for iid in sorted(book.open):
        inc = book.open[iid]
        changed = iid in grown
        members = []
        for m in inc["members"]:
            if m["ended_at"] is None:
                alert = open_alerts.get(m["id"]) or ended_alerts.get(m["id"])
                # An alert gone without ending (its series no longer tracked) ends here.
                m = _member(alert) if alert is not None else {**m, "ended_at": iso(at)}
                changed |= m["ended_at"] is not None
            members.append(m)
        inc = book.open[iid] = _summarised({**inc, "members": members}, at)
        if inc["ended_at"] is not None:
            del book.open[iid]
            book.ended[iid] = inc
            records.append(record("ended", inc))
        elif iid in founded:
            records.append(record("started", inc))
        elif changed:
            records.append(record("updated", inc))
    return records, {a: i for a, i in placed.items() if a in open_alerts}


def record(kind: str, incident: dict[str, Any]) -> dict[str, Any]:
    """The Kafka record of an incident opening, gaining or losing members, or ending."""
    return {"type": f"demand_incident_{kind}", "incident": incident}


def ordered(found: Iterable[Mapping[str, Any]], sort: str = "newest") -> list[Any]:
    """Incidents newest first (then largest), or largest first (then newest)."""
    def size(i: Mapping[str, Any]) -> float:
        return -abs(float(i.get("peak_magnitude", 0.0)))

    def age(i: Mapping[str, Any]) -> float:
        return -_epoch(i["started_at"])
    if sort == "largest":
        return sorted(found, key=lambda i: (size(i), age(i), i["id"]))
    return sorted(found, key=lambda i: (age(i), size(i), i["id"]))


def stamp(alerts: Iterable[dict[str, Any]], of: Mapping[str, str]) -> None:
    """Every alert carries the id of its incident (in place)."""
    for alert in alerts:
        alert["incident_id"] = of.get(alert["id"], alert.get("incident_id"))

