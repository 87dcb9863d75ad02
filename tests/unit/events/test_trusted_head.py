"""Automatic checkpoints over the chain points this process wrote itself.

A process trusts the end of its own appends when they follow on from a point
it verified or signed. It signs that point without reading the events back,
verifies from it (not from the older checkpoint) when another writer
appended in between, and refuses to sign when that point was changed.
"""

import logging
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import pytest
from sqlalchemy import select

from common.event_tampering import sql, tamper
from keysteward.db import Store
from keysteward.events.automatic import TrustedHead, enable_automatic_checkpoints
from keysteward.events.chain import (
    AppendedSpan,
    ChainPoint,
    canonical_fields,
    compute_digest,
)
from keysteward.events.checkpoints import create_checkpoint
from keysteward.events.errors import TamperedLogError
from keysteward.events.models import Event, EventCheckpoint
from keysteward.events.services import record_events
from keysteward.events.verify import verify_chain, verify_since_checkpoint

EVERY = 5


@pytest.fixture
def checkpointed(store: Store, tmp_path: Path) -> Iterator[Store]:
    """The store with a checkpoint signed automatically every EVERY events."""
    original_home = store.settings.home
    store.settings.home = tmp_path
    disable = enable_automatic_checkpoints(store, every=EVERY)
    try:
        yield store
    finally:
        disable()
        store.settings.home = original_home


def _record(store: Store, count: int) -> None:
    with store.session() as session:
        record_events(
            session, [{"actor": "test:writer", "action": "test.append"}] * count
        )


def _checkpoint_sequences(store: Store) -> list[int]:
    with store.session() as session:
        return list(
            session.scalars(
                select(EventCheckpoint.sequence).order_by(EventCheckpoint.id)
            )
        )


def _point(store: Store, sequence: int) -> ChainPoint:
    with store.session() as session:
        digest = session.scalar(select(Event.digest).where(Event.sequence == sequence))
    assert digest is not None
    return ChainPoint(sequence, digest)


def _append_forged(store: Store, previous: ChainPoint) -> ChainPoint:
    """Append an event with a made-up digest behind this process's back."""
    forged = ChainPoint(previous.sequence + 1, "f" * 64)
    tamper(
        store,
        sql(
            "INSERT INTO events (occurred_at, actor, action, outcome, details, "
            "sequence, previous_digest, digest) VALUES (:at, 'intruder', "
            "'test.forged', 'success', '{}', :sequence, :previous, :digest)",
            at=datetime(2026, 1, 1, tzinfo=UTC),
            sequence=forged.sequence,
            previous=previous.digest,
            digest=forged.digest,
        ),
        sql(
            "UPDATE event_chain_head SET last_sequence = :sequence, "
            "last_digest = :digest WHERE id = 1",
            sequence=forged.sequence,
            digest=forged.digest,
        ),
    )
    return forged


def test_follow_moves_along_contiguous_spans() -> None:
    trusted = TrustedHead()
    trusted.follow(AppendedSpan(0, "0" * 64, 2, "b" * 64))
    assert trusted.point is None

    trusted.checkpointed(ChainPoint(2, "b" * 64))
    trusted.follow(AppendedSpan(2, "b" * 64, 4, "d" * 64))
    assert trusted.point == ChainPoint(4, "d" * 64)

    trusted.follow(AppendedSpan(5, "e" * 64, 6, "f" * 64))
    assert trusted.point == ChainPoint(4, "d" * 64)


def test_checkpointed_keeps_newer_point() -> None:
    trusted = TrustedHead()
    trusted.checkpointed(ChainPoint(9, "9" * 64))
    trusted.checkpointed(ChainPoint(5, "5" * 64))
    assert trusted.point == ChainPoint(9, "9" * 64)


def test_own_appends_signed_unread(checkpointed: Store) -> None:
    _record(checkpointed, EVERY)
    _record(checkpointed, 3)
    # Changed after this process wrote it, so the next checkpoint is signed
    # from what was written, and verify names the changed row.
    tamper(checkpointed, sql("UPDATE events SET actor = 'intruder' WHERE sequence = 6"))
    _record(checkpointed, 2)

    assert _checkpoint_sequences(checkpointed) == [EVERY, 2 * EVERY]
    with checkpointed.session() as session:
        report = verify_chain(session, checkpointed.settings.home)
    first = report.first_problem
    assert first is not None
    assert first.sequence == 6
    assert first.kind == "changed"


def test_foreign_append_verified_first(
    checkpointed: Store, caplog: pytest.LogCaptureFixture
) -> None:
    _record(checkpointed, EVERY)
    _append_forged(checkpointed, _point(checkpointed, EVERY))

    with caplog.at_level(logging.ERROR, logger="keysteward.events.automatic"):
        _record(checkpointed, EVERY - 1)

    assert _checkpoint_sequences(checkpointed) == [EVERY]
    assert "automatic event checkpoint failed" in caplog.text


def test_foreign_valid_append_signed(store: Store, checkpointed: Store) -> None:
    _record(checkpointed, EVERY)
    # Appended by a writer that this process's hooks do not see, as another
    # server process would, with a correct digest.
    previous = _point(store, EVERY)
    occurred_at = datetime(2026, 1, 1, tzinfo=UTC)
    digest = compute_digest(
        canonical_fields(
            sequence=EVERY + 1,
            previous_digest=previous.digest,
            occurred_at=occurred_at,
            actor="other:process",
            action="test.append",
            target_type=None,
            target_id=None,
            outcome="success",
            source_address=None,
            request_id=None,
            details={},
        )
    )
    tamper(
        store,
        sql(
            "INSERT INTO events (occurred_at, actor, action, outcome, details, "
            "sequence, previous_digest, digest) VALUES (:at, 'other:process', "
            "'test.append', 'success', '{}', :sequence, :previous, :digest)",
            at=occurred_at,
            sequence=EVERY + 1,
            previous=previous.digest,
            digest=digest,
        ),
        sql(
            "UPDATE event_chain_head SET last_sequence = :sequence, "
            "last_digest = :digest WHERE id = 1",
            sequence=EVERY + 1,
            digest=digest,
        ),
    )

    _record(checkpointed, EVERY - 1)

    assert _checkpoint_sequences(checkpointed) == [EVERY, 2 * EVERY]
    with checkpointed.session() as session:
        assert verify_chain(session, checkpointed.settings.home).valid


def test_changed_trusted_point_reported(store: Store, tmp_path: Path) -> None:
    _record(store, 3)
    wrong = ChainPoint(2, "0" * 64)
    with store.session() as session:
        report = verify_since_checkpoint(session, tmp_path, wrong)
        with pytest.raises(TamperedLogError, match="event 2 no longer has"):
            create_checkpoint(session, tmp_path, wrong)

    first = report.first_problem
    assert first is not None
    assert first.sequence == 2
    assert first.kind == "changed"


def test_removed_own_events_refused(
    checkpointed: Store, caplog: pytest.LogCaptureFixture
) -> None:
    _record(checkpointed, EVERY)
    _record(checkpointed, 3)
    # Remove this process's newest events and point the head back, so the
    # shortened chain is consistent from the checkpoint on. The appends
    # after it reuse sequences 7 and 8 with other digests.
    last_kept = _point(checkpointed, EVERY + 1)
    tamper(
        checkpointed,
        sql("DELETE FROM events WHERE sequence > :kept", kept=last_kept.sequence),
        sql(
            "UPDATE event_chain_head SET last_sequence = :sequence, "
            "last_digest = :digest WHERE id = 1",
            sequence=last_kept.sequence,
            digest=last_kept.digest,
        ),
    )

    with caplog.at_level(logging.ERROR, logger="keysteward.events.automatic"):
        _record(checkpointed, EVERY)

    assert _checkpoint_sequences(checkpointed) == [EVERY]
    assert "event 8 no longer has the digest" in caplog.text
    assert caplog.text.count("automatic event checkpoint failed") == 1


def test_trusted_point_shortens_verification(store: Store, tmp_path: Path) -> None:
    _record(store, 6)
    with store.session() as session:
        report = verify_since_checkpoint(session, tmp_path, _point(store, 4))

    assert report.valid
    assert report.events_checked == 2
