"""verify_chain finds each kind of tampering and names the first bad event.

Each test edits the database directly, as an attacker with database access
would: it drops the append-only triggers, changes rows and puts the triggers
back, all in one transaction so the shared PostgreSQL database keeps them.
"""

from pathlib import Path

import pytest
from sqlalchemy import JSON, bindparam, func, select, text

from common.event_tampering import sql, tamper
from keysteward.db import Store
from keysteward.events.chain import canonical_fields, compute_digest
from keysteward.events.checkpoints import create_checkpoint
from keysteward.events.errors import TamperedLogError
from keysteward.events.models import Event, EventCheckpoint
from keysteward.events.services import record_events
from keysteward.events.verify import (
    VerifyReport,
    verify_chain,
    verify_since_checkpoint,
)


def _record(store: Store, count: int) -> list[int]:
    with store.session() as session:
        recorded = record_events(
            session,
            [
                {"actor": "cli:alice", "action": "credential.create", "target_id": n}
                for n in range(1, count + 1)
            ],
        )
        session.flush()
        return [e.id for e in recorded]


def _verify(store: Store, home: Path | None = None) -> VerifyReport:
    with store.session() as session:
        return verify_chain(session, home)


def _rehash_from(store: Store, sequence: int) -> None:
    """Recompute the digests of every event from ``sequence`` on, as a forger would."""
    with store.session() as session:
        events = list(session.scalars(select(Event).order_by(Event.sequence)))
    digest = events[sequence - 2].digest if sequence > 1 else "0" * 64
    statements = []
    for recorded in events[sequence - 1 :]:
        fields = canonical_fields(
            sequence=recorded.sequence,
            previous_digest=digest,
            occurred_at=recorded.occurred_at,
            actor=recorded.actor,
            action=recorded.action,
            target_type=recorded.target_type,
            target_id=recorded.target_id,
            outcome=recorded.outcome,
            source_address=recorded.source_address,
            request_id=recorded.request_id,
            details=recorded.details,
        )
        previous, digest = digest, compute_digest(fields)
        statements.append(
            sql(
                "UPDATE events SET previous_digest = :previous, digest = :digest "
                "WHERE id = :id",
                previous=previous,
                digest=digest,
                id=recorded.id,
            )
        )
    statements.append(
        sql("UPDATE event_chain_head SET last_digest = :digest", digest=digest)
    )
    tamper(store, *statements)


def test_intact_log_is_valid(store: Store) -> None:
    _record(store, 5)
    report = _verify(store)
    assert report.valid
    assert report.events_checked == 5
    assert report.last_sequence == 5


def test_empty_log_is_valid(store: Store) -> None:
    report = _verify(store)
    assert report.valid
    assert report.events_checked == 0


def test_changed_field_names_event(store: Store) -> None:
    ids = _record(store, 5)
    tamper(
        store,
        sql(
            "UPDATE events SET actor = :actor WHERE id = :id",
            actor="mallory",
            id=ids[2],
        ),
    )
    report = _verify(store)
    assert not report.valid
    first = report.first_problem
    assert first is not None
    assert first.kind == "changed"
    assert first.sequence == 3
    assert first.event_id == ids[2]
    assert f"event 3 (id {ids[2]}) was changed" in first.message


def test_changed_details_names_event(store: Store) -> None:
    ids = _record(store, 4)
    tamper(
        store,
        text("UPDATE events SET details = :details WHERE id = :id").bindparams(
            bindparam("details", {"n": 1}, type_=JSON), id=ids[1]
        ),
    )
    first = _verify(store).first_problem
    assert first is not None
    assert first.sequence == 2
    assert first.kind == "changed"


def test_removed_event_names_gap(store: Store) -> None:
    ids = _record(store, 5)
    tamper(store, sql("DELETE FROM events WHERE id = :id", id=ids[1]))
    report = _verify(store)
    first = report.first_problem
    assert first is not None
    assert first.kind == "missing"
    assert first.sequence == 2
    assert "sequence 2 is missing" in first.message
    assert f"event id {ids[2]} at sequence 3" in first.message
    assert len(report.problems) == 1


def test_removed_newest_event_detected(store: Store) -> None:
    ids = _record(store, 5)
    tamper(store, sql("DELETE FROM events WHERE id = :id", id=ids[4]))
    first = _verify(store).first_problem
    assert first is not None
    assert first.kind == "truncated"
    assert first.sequence == 5
    assert "events 5 to 5 are missing" in first.message


def test_swapped_rows_name_first(store: Store) -> None:
    ids = _record(store, 5)
    tamper(
        store,
        sql(
            "UPDATE events SET sequence = :sequence WHERE id = :id",
            sequence=-1,
            id=ids[1],
        ),
        sql(
            "UPDATE events SET sequence = :sequence WHERE id = :id",
            sequence=2,
            id=ids[2],
        ),
        sql(
            "UPDATE events SET sequence = :sequence WHERE id = :id",
            sequence=3,
            id=ids[1],
        ),
    )
    report = _verify(store)
    first = report.first_problem
    assert first is not None
    assert first.sequence == 2
    assert first.event_id == ids[2]
    assert {p.kind for p in report.problems} >= {"broken_link", "reordered"}


def test_inserted_event_detected(store: Store) -> None:
    _record(store, 3)
    tamper(
        store,
        sql(
            "INSERT INTO events (occurred_at, actor, action, outcome, details, "
            "sequence, previous_digest, digest) VALUES ('2026-01-01 00:00:00', "
            "'mallory', 'role.grant', 'success', '{}', 0, :previous, :digest)",
            previous="0" * 64,
            digest="1" * 64,
        ),
    )
    report = _verify(store)
    first = report.first_problem
    assert first is not None
    assert first.sequence == 0
    assert first.kind == "inserted"
    assert "at sequence 0 is out of place" in first.message
    assert {p.kind for p in report.problems} >= {"changed", "broken_link"}


def test_rehashed_change_breaks_next_link(store: Store) -> None:
    ids = _record(store, 5)
    tamper(
        store,
        sql(
            "UPDATE events SET actor = :actor WHERE id = :id",
            actor="mallory",
            id=ids[2],
        ),
    )
    with store.session() as session:
        changed = session.get_one(Event, ids[2])
        forged = compute_digest(
            canonical_fields(
                sequence=changed.sequence,
                previous_digest=changed.previous_digest,
                occurred_at=changed.occurred_at,
                actor=changed.actor,
                action=changed.action,
                target_type=changed.target_type,
                target_id=changed.target_id,
                outcome=changed.outcome,
                source_address=changed.source_address,
                request_id=changed.request_id,
                details=changed.details,
            )
        )
    tamper(
        store,
        sql(
            "UPDATE events SET digest = :digest WHERE id = :id",
            digest=forged,
            id=ids[2],
        ),
    )
    first = _verify(store).first_problem
    assert first is not None
    assert first.kind == "broken_link"
    assert first.sequence == 4
    assert "event 4" in first.message
    assert "the event before it was changed and rehashed" in first.message


def test_fully_rehashed_chain_fails_checkpoint(store: Store, tmp_path: Path) -> None:
    ids = _record(store, 5)
    with store.session() as session:
        create_checkpoint(session, tmp_path)
    tamper(
        store,
        sql(
            "UPDATE events SET actor = :actor WHERE id = :id",
            actor="mallory",
            id=ids[1],
        ),
    )
    _rehash_from(store, 2)
    report = _verify(store, tmp_path)
    first = report.first_problem
    assert first is not None
    assert first.kind == "checkpoint"
    assert first.sequence == 5
    assert "were changed and rehashed" in first.message


def test_rehash_undetected_without_checkpoint(store: Store) -> None:
    # NOTE: this documents the limit of a bare hash chain: a forger who can
    # write the database can rehash it. Checkpoints close that gap for the
    # events they cover.
    ids = _record(store, 3)
    tamper(
        store,
        sql(
            "UPDATE events SET actor = :actor WHERE id = :id",
            actor="mallory",
            id=ids[1],
        ),
    )
    _rehash_from(store, 2)
    assert _verify(store).valid


def test_problems_listed_in_chain_order(store: Store) -> None:
    ids = _record(store, 6)
    tamper(
        store,
        sql("UPDATE events SET actor = :actor WHERE id = :id", actor="x", id=ids[4]),
        sql("UPDATE events SET actor = :actor WHERE id = :id", actor="y", id=ids[1]),
    )
    report = _verify(store)
    assert [p.sequence for p in report.problems] == [2, 5]


def test_checkpoint_refuses_tampered_log(store: Store, tmp_path: Path) -> None:
    ids = _record(store, 3)
    tamper(store, sql("UPDATE events SET actor = 'x' WHERE id = :id", id=ids[0]))
    with (
        pytest.raises(TamperedLogError, match=r"event 1 \(id \d+\) was changed"),
        store.session() as session,
    ):
        create_checkpoint(session, tmp_path)
    with store.session() as session:
        count = session.scalar(select(func.count()).select_from(EventCheckpoint))
    assert count == 0


def test_checkpoint_checks_after_anchor(store: Store, tmp_path: Path) -> None:
    ids = _record(store, 3)
    with store.session() as session:
        create_checkpoint(session, tmp_path)
    ids += _record(store, 2)
    tamper(store, sql("UPDATE events SET actor = 'x' WHERE id = :id", id=ids[4]))
    with (
        pytest.raises(TamperedLogError, match="event 5"),
        store.session() as session,
    ):
        create_checkpoint(session, tmp_path)


def test_checkpoint_detects_rehashed_anchor(store: Store, tmp_path: Path) -> None:
    ids = _record(store, 3)
    with store.session() as session:
        create_checkpoint(session, tmp_path)
    _record(store, 1)
    tamper(store, sql("UPDATE events SET actor = 'x' WHERE id = :id", id=ids[0]))
    _rehash_from(store, 1)
    with (
        pytest.raises(TamperedLogError, match="no longer has the digest"),
        store.session() as session,
    ):
        create_checkpoint(session, tmp_path)


def test_verify_since_checkpoint_intact(store: Store, tmp_path: Path) -> None:
    _record(store, 3)
    with store.session() as session:
        create_checkpoint(session, tmp_path)
    _record(store, 2)
    with store.session() as session:
        report = verify_since_checkpoint(session, tmp_path)
    assert report.valid, report.problems
    assert report.events_checked == 2
    assert report.last_sequence == 5


def test_append_during_verify_ignored(store: Store) -> None:
    """An event committed while verify runs is outside its snapshot."""
    _record(store, 3)
    appended: list[int] = []

    def append_once(_checked: int) -> None:
        # Called after the scan and before the chain head is read.
        if not appended:
            appended.extend(_record(store, 1))

    with store.read_snapshot() as session:
        report = verify_chain(session, progress=append_once)

    assert len(appended) == 1
    assert report.problems == []
    assert report.last_sequence == 3
