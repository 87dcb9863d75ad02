"""The event log accepts inserts and rejects every change."""

import pytest
from sqlalchemy import delete, select, text, update
from sqlalchemy.exc import DBAPIError

from keysteward.db import Store
from keysteward.events.errors import AppendOnlyError
from keysteward.events.models import Event
from keysteward.events.services import list_events, record_event


def _record_one(store: Store) -> int:
    with store.session() as session:
        recorded = record_event(
            session,
            actor="cli:alice",
            action="credential.import",
            target_type="credential",
            target_id=7,
            details={"source": "aws"},
        )
        session.flush()
        return recorded.id


def test_record_event_round_trip(store: Store) -> None:
    event_id = _record_one(store)
    with store.session() as session:
        events = list_events(session)
    assert [e.id for e in events] == [event_id]
    assert events[0].target_id == "7"
    assert events[0].details == {"source": "aws"}
    assert events[0].outcome == "success"


def test_service_rejects_event_update(store: Store) -> None:
    event_id = _record_one(store)
    with pytest.raises(AppendOnlyError), store.session() as session:
        loaded = session.get_one(Event, event_id)
        loaded.action = "something.else"
    with store.session() as session:
        assert session.get_one(Event, event_id).action == "credential.import"


def test_service_rejects_event_delete(store: Store) -> None:
    event_id = _record_one(store)
    with pytest.raises(AppendOnlyError), store.session() as session:
        session.delete(session.get_one(Event, event_id))
    with store.session() as session:
        assert session.get(Event, event_id) is not None


def test_database_rejects_bulk_update(store: Store) -> None:
    event_id = _record_one(store)
    with pytest.raises(DBAPIError, match="append-only"), store.session() as session:
        session.execute(update(Event).values(actor="mallory"))
    with store.session() as session:
        assert session.get_one(Event, event_id).actor == "cli:alice"


def test_database_rejects_raw_delete(store: Store) -> None:
    _record_one(store)
    with (
        pytest.raises(DBAPIError, match="append-only"),
        store.engine.begin() as connection,
    ):
        connection.execute(text("DELETE FROM events"))
    with store.session() as session:
        assert len(session.scalars(select(Event)).all()) == 1


def test_database_rejects_orm_delete(store: Store) -> None:
    _record_one(store)
    with pytest.raises(DBAPIError, match="append-only"), store.session() as session:
        session.execute(delete(Event))
