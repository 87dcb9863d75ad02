"""Recording and listing events, and the guard that keeps recorded events unchanged."""

import json
from collections.abc import Iterable, Mapping
from datetime import datetime
from typing import Any

from sqlalchemy import event, select
from sqlalchemy.orm import Session

from keysteward.clock import as_utc
from keysteward.errors import InvalidInputError
from keysteward.events.appender import append_rows
from keysteward.events.chain import canonical_json, note_appended
from keysteward.events.encoding import encode_events
from keysteward.events.errors import AppendOnlyError
from keysteward.events.models import Event
from keysteward.logging import contains_known_secret

EVENT_FIELDS = frozenset(
    {
        "actor",
        "action",
        "target_type",
        "target_id",
        "outcome",
        "source_address",
        "request_id",
        "details",
    }
)


def record_event(
    session: Session,
    *,
    actor: str,
    action: str,
    target_type: str | None = None,
    target_id: str | int | None = None,
    outcome: str = "success",
    source_address: str | None = None,
    request_id: str | None = None,
    details: dict[str, Any] | None = None,
) -> Event:
    """Add an event to ``session``; it is written with the session's transaction.

    The event gets its sequence number and digests when the session flushes,
    and if it cannot be written the flush, and so the caller's transaction,
    fails. ``details`` must contain no secret material: names, ids and
    counts only. Raises InvalidInputError naming the key when a ``details``
    value looks like a secret or is not JSON.
    """
    recorded = Event(
        actor=actor,
        action=action,
        target_type=target_type,
        target_id=None if target_id is None else str(target_id),
        outcome=outcome,
        source_address=source_address,
        request_id=request_id,
        details=_checked_details(details),
    )
    session.add(recorded)
    return recorded


def record_events(
    session: Session, entries: Iterable[Mapping[str, Any]]
) -> list[Event]:
    """Add many events to ``session`` in order, for bulk writers.

    Each entry takes the keyword arguments of ``record_event``. The events
    are chained under one lock when the session flushes, which is much
    cheaper than a transaction per event. Raises InvalidInputError, before
    anything is added, for an entry with an unknown key or a bad value.
    """
    recorded = [Event(**values) for values in checked_entries(entries)]
    session.add_all(recorded)
    return recorded


def append_events(session: Session, entries: Iterable[Mapping[str, Any]]) -> int:
    """Insert events over the session's driver connection; return the last sequence.

    The same chain as ``record_events``, for writers that commit events and
    nothing else (see ``events.appender``). The statements run in the
    session's transaction, and the session's commit triggers the automatic
    checkpoints as usual. The session must hold no pending Event objects,
    because those would be chained after these at flush. Raises
    InvalidInputError, before anything is written, for a bad entry.
    """
    encoded = encode_events(entries, session.get_bind().dialect)
    connection = session.connection()
    driver = connection.connection.driver_connection
    assert driver is not None
    cursor = driver.cursor()
    try:
        span = append_rows(cursor, connection.dialect, encoded)
    finally:
        cursor.close()
    note_appended(session.info, span)
    return span.end_sequence


def checked_entries(entries: Iterable[Mapping[str, Any]]) -> list[dict[str, Any]]:
    """Validate event entries; return copies with details normalized for digests.

    Raises InvalidInputError naming the entry for an unknown field, a
    missing actor or action, or details that are not JSON or look secret.
    """
    return [checked_entry(entry, index) for index, entry in enumerate(entries)]


def checked_entry(entry: Mapping[str, Any], index: int = 0) -> dict[str, Any]:
    """Validate one event entry as ``checked_entries`` does; errors name ``index``."""
    unknown = sorted(set(entry) - EVENT_FIELDS)
    if unknown:
        raise InvalidInputError(
            f"event entry {index} has unknown field(s) {', '.join(unknown)}; "
            f"allowed fields are {', '.join(sorted(EVENT_FIELDS))}"
        )
    missing = [name for name in ("actor", "action") if not entry.get(name)]
    if missing:
        raise InvalidInputError(
            f"event entry {index} is missing {' and '.join(missing)}"
        )
    values = dict(entry)
    values["details"] = _checked_details(values.get("details"))
    if values.get("target_id") is not None:
        values["target_id"] = str(values["target_id"])
    return values


# Values that JSON stores and returns unchanged; floats are left out because
# NaN and infinity must be rejected.
_PLAIN_JSON_TYPES = frozenset({str, int, bool, type(None)})


def _checked_details(details: dict[str, Any] | None) -> dict[str, Any]:
    if details is None:
        return {}
    if not isinstance(details, dict):
        raise InvalidInputError(
            f"event details must be a JSON object, not {type(details).__name__}"
        )
    if all(
        isinstance(key, str) and type(value) in _PLAIN_JSON_TYPES
        for key, value in details.items()
    ):
        # Already in the form the round trip below would give.
        plain = dict(details)
        _reject_secrets(plain, "details")
        return plain
    try:
        encoded = canonical_json(details)
    except (TypeError, ValueError) as exc:
        raise InvalidInputError(
            f"event details are not valid JSON ({exc}); use strings, numbers, "
            "booleans, lists and objects with string keys"
        ) from None
    # Store exactly what the digest covers: the JSON round trip turns tuples
    # into lists and fixes the types the database will hand back.
    normalized: dict[str, Any] = json.loads(encoded)
    _reject_secrets(normalized, "details")
    return normalized


def _reject_secrets(value: Any, path: str) -> None:
    # Only known credential shapes are rejected: an entropy test would also
    # reject UUIDs, digests and request ids, which events carry routinely.
    if isinstance(value, str):
        if contains_known_secret(value):
            raise InvalidInputError(
                f"event {path} looks like a secret and was not recorded; "
                "record the credential's id or name instead of its value"
            )
    elif isinstance(value, dict):
        for key, item in value.items():
            _reject_secrets(item, f"{path}.{key}")
    elif isinstance(value, list):
        for position, item in enumerate(value):
            _reject_secrets(item, f"{path}[{position}]")


def list_events(
    session: Session,
    limit: int = 100,
    *,
    since: datetime | None = None,
    actor: str | None = None,
    action: str | None = None,
) -> list[Event]:
    """Return the newest ``limit`` events matching the filters, newest first.

    ``since`` keeps events that occurred at or after it; ``actor`` and
    ``action`` match exactly.
    """
    query = select(Event).order_by(Event.sequence.desc()).limit(limit)
    if since is not None:
        query = query.where(Event.occurred_at >= as_utc(since))
    if actor is not None:
        query = query.where(Event.actor == actor)
    if action is not None:
        query = query.where(Event.action == action)
    return list(session.scalars(query))


@event.listens_for(Session, "before_flush")
def _reject_event_changes(session: Session, _context: Any, _instances: Any) -> None:
    for instance in session.dirty:
        if isinstance(instance, Event) and session.is_modified(instance):
            raise AppendOnlyError(
                f"event {instance.id} cannot be changed: the log is append-only"
            )
    for instance in session.deleted:
        if isinstance(instance, Event):
            raise AppendOnlyError(
                f"event {instance.id} cannot be deleted: the log is append-only"
            )
