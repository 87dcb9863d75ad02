"""The event log accepts inserts, rejects every change and keeps secrets out."""

import hashlib
import uuid
from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import delete, select, text, update
from sqlalchemy.exc import DBAPIError

from keysteward.db import Store
from keysteward.errors import InvalidInputError
from keysteward.events.errors import AppendOnlyError
from keysteward.events.models import Event
from keysteward.events.services import list_events, record_event, record_events


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


def _fake_github_token() -> str:
    return "ghp_" + "a1B2" * 9


def test_record_event_rejects_secret_details(store: Store) -> None:
    with (
        pytest.raises(InvalidInputError, match=r"details\.config\.token"),
        store.session() as session,
    ):
        record_event(
            session,
            actor="cli:alice",
            action="credential.import",
            details={"config": {"token": _fake_github_token()}},
        )
    with store.session() as session:
        assert list_events(session) == []


def test_record_event_rejects_secret_in_list(store: Store) -> None:
    with (
        pytest.raises(InvalidInputError, match=r"details\.values\[1\]"),
        store.session() as session,
    ):
        record_event(
            session,
            actor="a",
            action="b",
            details={"values": ["fine", "password=hunter2hunter2"]},
        )


def test_record_event_rejects_non_json_details(store: Store) -> None:
    with (
        pytest.raises(InvalidInputError, match="not valid JSON"),
        store.session() as session,
    ):
        record_event(session, actor="a", action="b", details={"when": {1, 2}})


def test_record_event_keeps_plain_details(store: Store) -> None:
    with store.session() as session:
        record_event(
            session,
            actor="a",
            action="b",
            details={
                "names": ("x", "y"),
                "count": 3,
                "ok": True,
                "nested": {"k": None},
            },
        )
    with store.session() as session:
        (stored,) = list_events(session)
    assert stored.details == {
        "names": ["x", "y"],
        "count": 3,
        "ok": True,
        "nested": {"k": None},
    }


def test_record_events_rejects_unknown_field(store: Store) -> None:
    with (
        pytest.raises(InvalidInputError, match="entry 1 has unknown field.*colour"),
        store.session() as session,
    ):
        record_events(
            session,
            [
                {"actor": "a", "action": "b"},
                {"actor": "a", "action": "b", "colour": 1},
            ],
        )
    with store.session() as session:
        assert list_events(session) == []


def test_record_events_requires_actor(store: Store) -> None:
    with (
        pytest.raises(InvalidInputError, match="entry 0 is missing actor"),
        store.session() as session,
    ):
        record_events(session, [{"action": "b"}])


def test_failed_event_fails_caller_transaction(store: Store) -> None:
    with pytest.raises(DBAPIError), store.session() as session:
        record_event(session, actor="a" * 300, action="b")
        record_event(session, actor="a", action="c")
        if store.engine.dialect.name == "sqlite":
            # SQLite does not enforce VARCHAR lengths, so force a failure the
            # same way: a NULL in a NOT NULL column.
            session.add(Event(actor=None, action="d"))
    with store.session() as session:
        assert list_events(session) == []


def test_list_events_filters(store: Store) -> None:
    with store.session() as session:
        record_event(session, actor="alice", action="credential.create")
        record_event(session, actor="bob", action="credential.create")
        record_event(session, actor="alice", action="role.grant")
    with store.session() as session:
        by_alice = list_events(session, actor="alice")
        grants = list_events(session, action="role.grant")
        newest = list_events(session, limit=1)
        future = list_events(session, since=datetime.now(UTC) + timedelta(days=1))
        past = list_events(session, since=datetime.now(UTC) - timedelta(days=1))
    assert [e.action for e in by_alice] == ["role.grant", "credential.create"]
    assert [e.actor for e in grants] == ["alice"]
    assert [e.sequence for e in newest] == [3]
    assert future == []
    assert len(past) == 3


def test_record_event_accepts_identifiers(store: Store) -> None:
    request_id = str(uuid.uuid4())
    digest = hashlib.sha256(b"report.csv").hexdigest()
    with store.session() as session:
        record_event(
            session,
            actor="api:svc-crm-sync",
            action="secret.read",
            details={"request": request_id, "file_sha256": digest},
        )
    with store.session() as session:
        recorded = list_events(session)
    assert recorded[0].details == {"request": request_id, "file_sha256": digest}
