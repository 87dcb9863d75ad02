"""Recording events, and the guard that keeps recorded events unchanged."""

from typing import Any

from sqlalchemy import event, select
from sqlalchemy.orm import Session

from keysteward.events.errors import AppendOnlyError
from keysteward.events.models import Event


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

    ``details`` must hold no secret material: names, ids and counts only.
    """
    recorded = Event(
        actor=actor,
        action=action,
        target_type=target_type,
        target_id=None if target_id is None else str(target_id),
        outcome=outcome,
        source_address=source_address,
        request_id=request_id,
        details=details or {},
    )
    session.add(recorded)
    return recorded


def list_events(session: Session, limit: int = 100) -> list[Event]:
    """Return the newest ``limit`` events, newest first."""
    query = select(Event).order_by(Event.id.desc()).limit(limit)
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
