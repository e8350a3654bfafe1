"""Times as the service stores them (epoch seconds) and as it shows them (aware UTC datetimes)."""

import datetime


def utc(timestamp: float | None) -> datetime.datetime | None:
    """Epoch seconds as an aware UTC datetime (None stays None)."""
    return None if timestamp is None else datetime.datetime.fromtimestamp(timestamp, tz=datetime.UTC)


def epoch(value: datetime.datetime | None) -> float | None:
    """A datetime as epoch seconds; one without a zone is taken as UTC."""
    if value is None:
        return None
    if value.tzinfo is None:
        value = value.replace(tzinfo=datetime.UTC)
    return value.timestamp()
