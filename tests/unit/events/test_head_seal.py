"""Sealed chain heads: checkpoints over other server processes' appends.

Each store below stands for one server process: its own engine and its own
automatic checkpoints, on one database and one KEYSTEWARD_HOME. A process
that appends after a sealed head seals the new head. A checkpoint then signs
a sealed head without reading back the events since the newest point it
trusts, and verifies them when the seal is missing or wrong.
"""

import logging
from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy import select

from common.event_tampering import sql, tamper
from keysteward.db import Store, open_store
from keysteward.events.appender import append_rows
from keysteward.events.automatic import (
    enable_automatic_checkpoints,
    events_committed,
    sign_checkpoint,
    trusted_point,
)
from keysteward.events.chain import AppendedSpan
from keysteward.events.checkpoint_record import read_recorded
from keysteward.events.errors import TamperedLogError
from keysteward.events.models import EventChainHead, EventCheckpoint
from keysteward.events.seal import head_seal_key, seal_valid
from keysteward.events.services import record_events
from keysteward.events.verify import verify_chain

EVERY = 5
ENTRY = {"actor": "test:writer", "action": "test.append"}


@pytest.fixture
def first(store: Store, tmp_path: Path) -> Iterator[Store]:
    """The test store as one server process, with checkpoints every EVERY events."""
    original_home = store.settings.home
    store.settings.home = tmp_path
    disable = enable_automatic_checkpoints(store, every=EVERY)
    try:
        yield store
    finally:
        disable()
        store.settings.home = original_home


@pytest.fixture
def second(first: Store) -> Iterator[Store]:
    """Another server process on the same database and home."""
    url = first.engine.url.render_as_string(hide_password=False)
    settings = first.settings.model_copy(update={"database_url": url})
    other = open_store(settings, migrate=False)
    disable = enable_automatic_checkpoints(other, every=EVERY)
    try:
        yield other
    finally:
        disable()
        other.engine.dispose()


def _append(store: Store, count: int) -> AppendedSpan:
    """Append as the server's event writer does, sealing after a sealed head."""
    connection = store.engine.raw_connection()
    is_sqlite = store.engine.dialect.name == "sqlite"
    try:
        cursor = connection.cursor()
        if is_sqlite:
            cursor.execute("BEGIN IMMEDIATE")
        span = append_rows(
            cursor,
            store.engine.dialect,
            [ENTRY] * count,
            write_locked=is_sqlite,
            seal_key=head_seal_key(store.settings.home),
            trusted=trusted_point(store),
        )
        connection.commit()
    finally:
        connection.close()
    events_committed(store, span)
    return span


def _head_sealed(store: Store) -> bool:
    with store.session() as session:
        head = session.execute(select(EventChainHead)).scalar_one()
        return seal_valid(
            head_seal_key(store.settings.home),
            head.last_sequence,
            head.last_digest,
            head.seal,
        )


def _saved_head(store: Store) -> EventChainHead:
    """Return a copy of the chain head row, seal included, as an attacker keeps it."""
    with store.session() as session:
        head = session.execute(select(EventChainHead)).scalar_one()
        return EventChainHead(
            id=head.id,
            last_sequence=head.last_sequence,
            last_digest=head.last_digest,
            seal=head.seal,
        )


def _restore_head(store: Store, saved: EventChainHead) -> None:
    """Delete the events after ``saved`` and put the saved head and seal back."""
    tamper(
        store,
        sql("DELETE FROM events WHERE sequence > :kept", kept=saved.last_sequence),
        sql(
            "UPDATE event_chain_head SET last_sequence = :sequence, "
            "last_digest = :digest, seal = :seal WHERE id = 1",
            sequence=saved.last_sequence,
            digest=saved.last_digest,
            seal=saved.seal,
        ),
    )


def _checkpoint_sequences(store: Store) -> list[int]:
    with store.session() as session:
        query = select(EventCheckpoint.sequence).order_by(EventCheckpoint.id)
        return list(session.scalars(query))


def test_checkpoint_seals_head(first: Store) -> None:
    _append(first, 3)
    assert not _head_sealed(first)

    _append(first, 2)

    assert _checkpoint_sequences(first) == [EVERY]
    assert _head_sealed(first)


def test_writer_keeps_seal_and_orm_drops_it(first: Store) -> None:
    _append(first, EVERY)
    _append(first, 2)
    assert _head_sealed(first)

    with first.session() as session:
        record_events(session, [ENTRY])

    assert not _head_sealed(first)
    _append(first, 1)
    assert not _head_sealed(first)


def test_sealed_head_signed_unread(first: Store, second: Store) -> None:
    _append(first, EVERY)
    _append(second, 3)
    # A row of the other process, changed in place: the head's seal is still
    # valid, so the next checkpoint signs without reading it, and verify
    # names it against that checkpoint.
    tamper(first, sql("UPDATE events SET actor = 'intruder' WHERE sequence = 7"))

    _append(first, 2)

    assert _checkpoint_sequences(first) == [EVERY, 2 * EVERY]
    with first.session() as session:
        report = verify_chain(session, first.settings.home)
    problem = report.first_problem
    assert problem is not None
    assert problem.sequence == 7
    assert problem.kind == "changed"


def test_unsealed_head_verified(
    first: Store, second: Store, caplog: pytest.LogCaptureFixture
) -> None:
    _append(first, EVERY)
    _append(second, 3)
    tamper(
        first,
        sql("UPDATE events SET actor = 'intruder' WHERE sequence = 7"),
        sql("UPDATE event_chain_head SET seal = NULL WHERE id = 1"),
    )

    with caplog.at_level(logging.ERROR, logger="keysteward.events.automatic"):
        _append(first, 2)

    assert _checkpoint_sequences(first) == [EVERY]
    assert "automatic event checkpoint failed" in caplog.text
    assert "event 7" in caplog.text


def test_other_process_appends_signed(first: Store, second: Store) -> None:
    _append(first, EVERY)
    for _ in range(3):
        _append(second, 2)
        _append(first, 1)

    assert _checkpoint_sequences(first) == [EVERY, 2 * EVERY]
    assert _head_sealed(first)
    with first.session() as session:
        assert verify_chain(session, first.settings.home).valid


def test_replayed_sealed_head_refused(
    first: Store, caplog: pytest.LogCaptureFixture
) -> None:
    _append(first, EVERY)
    _append(first, 2)
    saved = _saved_head(first)
    _append(first, 2)
    # Removes events 8 and 9, then puts back the head and seal of event 7.
    _restore_head(first, saved)

    with caplog.at_level(logging.ERROR, logger="keysteward.events.automatic"):
        _append(first, 3)

    assert _checkpoint_sequences(first) == [EVERY]
    assert "event 9" in caplog.text


def test_replay_refused_between_processes(
    first: Store, second: Store, caplog: pytest.LogCaptureFixture
) -> None:
    _append(first, EVERY)
    _append(second, 1)
    _append(first, 1)
    saved = _saved_head(first)
    # Each process's trusted point follows the sealed heads the other leaves,
    # so the first one trusts event 9 although the second wrote event 8.
    _append(second, 1)
    _append(first, 1)
    _restore_head(first, saved)

    with caplog.at_level(logging.ERROR, logger="keysteward.events.automatic"):
        _append(first, 3)

    assert _checkpoint_sequences(first) == [EVERY]
    assert "automatic event checkpoint failed" in caplog.text
    assert "event 9" in caplog.text


def test_regrown_chain_keeps_point(
    first: Store, second: Store, caplog: pytest.LogCaptureFixture
) -> None:
    _append(first, EVERY)
    _append(second, 1)
    _append(first, 1)
    saved = _saved_head(first)
    _append(second, 1)
    _append(first, 1)
    point = trusted_point(first)
    assert point is not None
    assert point.sequence == 9
    _restore_head(first, saved)

    with caplog.at_level(logging.ERROR, logger="keysteward.events.automatic"):
        # The chain grows past event 9 again under sealed heads, and the
        # first process appends after it.
        _append(second, 4)
        _append(first, 1)
        _append(first, 3)

    assert trusted_point(first) == point
    assert _checkpoint_sequences(first) == [EVERY]
    assert "event 9" in caplog.text


def test_signing_skips_signed_interval(first: Store) -> None:
    _append(first, EVERY + 1)
    assert _checkpoint_sequences(first) == [EVERY + 1]
    _append(first, 1)

    again = sign_checkpoint(first, every=EVERY)

    assert again is not None
    assert again.sequence == EVERY + 1
    assert _checkpoint_sequences(first) == [EVERY + 1]


def test_deleted_checkpoints_reported(first: Store) -> None:
    _append(first, EVERY)
    _append(first, 2)
    recorded = read_recorded(first.settings.home)
    assert recorded is not None
    assert recorded.sequence == EVERY

    tamper(first, sql("DELETE FROM event_checkpoints"))

    with first.session() as session:
        report = verify_chain(session, first.settings.home)
    problem = report.first_problem
    assert problem is not None
    assert problem.kind == "checkpoint"
    assert "checkpoints were deleted" in problem.message


def test_rewrite_below_recorded_refused(first: Store) -> None:
    _append(first, EVERY)
    _append(first, 2)
    # Without checkpoint rows, the only anchor left is checkpoint.last. A
    # rehash from event 3 on gives event 5 another digest.
    tamper(
        first,
        sql("DELETE FROM event_checkpoints"),
        sql("UPDATE events SET digest = :digest WHERE sequence = 5", digest="e" * 64),
    )

    with pytest.raises(TamperedLogError, match="event 5"):
        sign_checkpoint(first, trust_seal=False)
    with first.session() as session:
        report = verify_chain(session, first.settings.home)
    messages = [problem.message for problem in report.problems]
    assert any("checkpoint.last records" in message for message in messages)
