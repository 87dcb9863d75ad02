"""The one place that reads the wall clock, so tests can pin time."""

from datetime import UTC, datetime


def utcnow() -> datetime:
    """Return the current time as an aware UTC datetime."""
    return datetime.now(UTC)


def as_utc(value: datetime | None) -> datetime | None:
    """Return ``value`` as an aware UTC datetime.

    SQLite returns naive datetimes for timezone-aware columns, so every value
    read back from the store passes through here before it is compared.
    """
    if value is None:
        return None
    if value.tzinfo is None:
        return value.replace(tzinfo=UTC)
    return value.astimezone(UTC)


def format_timestamp(value: object, empty: str = "-") -> str:
    """Format a stored time for a table: ISO 8601 in UTC, whole seconds.

    Returns ``empty`` for None, and other values unchanged as text.
    """
    if value is None:
        return empty
    if not isinstance(value, datetime):
        return str(value)
    moment = as_utc(value)
    assert moment is not None
    return moment.replace(microsecond=0).isoformat()
