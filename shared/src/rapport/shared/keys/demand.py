"""Demand's keys, all in the ``{demand}`` slot (written by the profile service: stage 2
and its closer)."""

from __future__ import annotations

from . import DEMAND, tagged


def demand_counts(width: int, start: int) -> str:
    """Hash series field -> exact amount (products: the closer's estimates) of one
    bucket of ``width`` seconds starting at epoch second ``start``."""
    return f"{tagged(DEMAND)}:demand:counts:{width}:{start}"


def demand_open_sketches(start: int) -> str:
    """Hash ``partition|metric`` -> product sketch of a base bucket not yet closed."""
    return f"{tagged(DEMAND)}:demand:open-sketches:{start}"


def demand_rollup_sketches(width: int, start: int) -> str:
    """Hash metric -> product sketch of an hour or day (merged by the closer)."""
    return f"{tagged(DEMAND)}:demand:sketches:{width}:{start}"


def demand_clocks() -> str:
    """Sorted set partition -> latest event time folded (epoch seconds)."""
    return f"{tagged(DEMAND)}:demand:clocks"


def demand_first() -> str:
    """Sorted set partition -> earliest base bucket counted (where closing starts)."""
    return f"{tagged(DEMAND)}:demand:first"


def demand_active() -> str:
    """Sorted set partition -> wall time it last folded data (idle partitions)."""
    return f"{tagged(DEMAND)}:demand:active"


def demand_series() -> str:
    """Set of the coarse series fields seen (what the closer tracks)."""
    return f"{tagged(DEMAND)}:demand:series"


def demand_late() -> str:
    """Hash ``events`` and metric -> what came too late to be counted."""
    return f"{tagged(DEMAND)}:demand:late"


def demand_closed() -> str:
    """Start of the last base bucket closed (its detectors fed)."""
    return f"{tagged(DEMAND)}:demand:closed"


def demand_detectors() -> str:
    """Hash series field -> detector state (JSON)."""
    return f"{tagged(DEMAND)}:demand:detectors"


def demand_forecast_quality() -> str:
    """Hash series field -> how its forecasts have done (JSON, beside its detector)."""
    return f"{tagged(DEMAND)}:demand:forecast-quality"


def demand_alerts() -> str:
    """Hash alert id -> open spike alert (JSON)."""
    return f"{tagged(DEMAND)}:demand:alerts"


def demand_alert(alert_id: str) -> str:
    """A closed spike alert (JSON), kept for a while."""
    return f"{tagged(DEMAND)}:demand:alert:{alert_id}"


def demand_incidents() -> str:
    """Hash incident id -> open demand incident (JSON): correlated alerts grouped."""
    return f"{tagged(DEMAND)}:demand:incidents"


def demand_incident(incident_id: str) -> str:
    """An ended demand incident (JSON), kept for a while."""
    return f"{tagged(DEMAND)}:demand:incident:{incident_id}"


def demand_audience(category: str) -> str:
    """Sorted set customer id -> affinity rank score: the top customers of a category."""
    return f"{tagged(DEMAND)}:demand:audience:{category}"


def demand_reach(name: str) -> str:
    """Sorted set customer id -> response score (expected 90-day value, then P(alive), as
    of the profile's last change) of the top customers of one region, channel or
    segment, or of everyone (``name`` is ``<dimension>:<value>``)."""
    return f"{tagged(DEMAND)}:demand:reach:{name}"


def demand_reach_names() -> str:
    """Set of the reach sets' names in use (what a merge or an erasure leaves)."""
    return f"{tagged(DEMAND)}:demand:reach-names"


def demand_counted() -> str:
    """Hash partition member -> highest record offset of the re-keyed stream whose demand
    facts are counted (what makes a republished fact count once)."""
    return f"{tagged(DEMAND)}:demand:counted"


def demand_closer_lock() -> str:
    return f"{tagged(DEMAND)}:demand:closer-lock"
