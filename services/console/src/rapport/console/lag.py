"""Consumer lag over time: its trend and how long until it clears. Pure functions of
``(time, lag)`` points, oldest first."""

from __future__ import annotations

from collections.abc import Sequence

Point = tuple[float, float]


def slope(points: Sequence[Point]) -> float | None:
    """Least-squares slope (records per second); None with fewer than two times."""
    if len(points) < 2:
        return None
    n = len(points)
    mt = sum(t for t, _ in points) / n
    ml = sum(v for _, v in points) / n
    var = sum((t - mt) ** 2 for t, _ in points)
    if var == 0:
        return None
    return sum((t - mt) * (v - ml) for t, v in points) / var


def trend(points: Sequence[Point], flat: float = 0.5) -> str:
    """'growing', 'shrinking' or 'steady' (within ``flat`` records per second)."""
    s = slope(points)
    if s is None or abs(s) < flat:
        return "steady"
    return "growing" if s > 0 else "shrinking"


def time_to_clear(points: Sequence[Point], recent_s: float = 60.0) -> float | None:
    """Seconds until the lag reaches zero at the rate it fell over the last
    ``recent_s``: 0 when there is none, None when it is not falling."""
    if not points:
        return None
    now, lag = points[-1]
    if lag <= 0:
        return 0.0
    recent = [p for p in points if p[0] >= now - recent_s]
    s = slope(recent)
    if s is None or s >= 0:
        return None
    return lag / -s


def describe_clear(seconds: float | None) -> str:
    if seconds is None:
        return "not clearing"
    if seconds == 0:
        return "clear"
    if seconds < 90:
        return f"~{seconds:.0f} s"
    if seconds < 5400:
        return f"~{seconds / 60:.0f} min"
    return f"~{seconds / 3600:.1f} h"
