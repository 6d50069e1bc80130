"""Moments given in a query string: ISO 8601 times or dates, read the same everywhere."""

from __future__ import annotations

from datetime import UTC, date, datetime, time, timedelta

from .service import ApiError

EARLIEST, LATEST = datetime(1900, 1, 1, tzinfo=UTC), datetime(2300, 1, 1, tzinfo=UTC)


def parse_as_of(value: str | None, name: str = "as_of", code: str = "invalid_as_of"
                ) -> datetime:
    """An ISO 8601 time (no zone means UTC), or a date meaning the end of that day;
    None means now. Anything else is a 400 that says what was expected."""
    if value is None:
        return datetime.now(UTC)
    text = value.strip()
    try:
        if len(text) == 10:  # a date: the end of that day
            at = datetime.combine(date.fromisoformat(text) + timedelta(days=1), time(),
                                  tzinfo=UTC)
        else:
            at = datetime.fromisoformat(text.replace("Z", "+00:00").replace("z", "+00:00"))
            at = at if at.tzinfo else at.replace(tzinfo=UTC)
    except (ValueError, OverflowError):
        raise ApiError(400, f"{name} must be an ISO 8601 time such as 2026-12-01T12:00:00Z "
                            f"(or a date, meaning the end of that day)",
                       code=code) from None
    if not EARLIEST <= at <= LATEST:
        raise ApiError(400, f"{name} must be between 1900 and 2300", code=code)
    return at.astimezone(UTC)
