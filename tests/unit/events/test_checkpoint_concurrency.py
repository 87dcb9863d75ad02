"""Signing checkpoints while other transactions append raises no false alarm."""

import threading
from pathlib import Path

from sqlalchemy import func, select

from keysteward.db import Store
from keysteward.events.automatic import enable_automatic_checkpoints
from keysteward.events.checkpoints import create_checkpoint
from keysteward.events.models import EventCheckpoint
from keysteward.events.services import record_event

APPENDS_PER_WRITER = 60
CHECKPOINTS = 25


def _append_events(store: Store, writer: int, errors: list[BaseException]) -> None:
    try:
        for number in range(APPENDS_PER_WRITER):
            with store.session() as session:
                record_event(
                    session,
                    actor=f"test:writer-{writer}",
                    action="test.append",
                    target_id=number,
                )
    except BaseException as exc:  # noqa: BLE001 - reported by the test
        errors.append(exc)


def test_checkpoints_during_appends(store: Store, tmp_path: Path) -> None:
    errors: list[BaseException] = []
    writers = [
        threading.Thread(target=_append_events, args=(store, writer, errors))
        for writer in range(2)
    ]
    for thread in writers:
        thread.start()
    attempts = 0
    while any(thread.is_alive() for thread in writers) and attempts < CHECKPOINTS:
        with store.session() as session:
            create_checkpoint(session, tmp_path)
        attempts += 1
    for thread in writers:
        thread.join(timeout=60)
    with store.session() as session:
        final = create_checkpoint(session, tmp_path)

    assert errors == []
    assert final is not None
    assert final.sequence == 2 * APPENDS_PER_WRITER


def test_savepoint_release_defers_checkpoint(store: Store, tmp_path: Path) -> None:
    # The PostgreSQL store is shared by the session, so its home is restored.
    original_home = store.settings.home
    store.settings.home = tmp_path
    disable = enable_automatic_checkpoints(store, every=1)
    try:
        with store.session() as session:
            with session.begin_nested():
                record_event(session, actor="test:savepoint", action="test.append")
            session.flush()
            # Released savepoint: no checkpoint yet, the transaction is open.
            assert session.scalar(select(func.count(EventCheckpoint.id))) == 0
        with store.session() as session:
            signed = session.scalar(select(func.count(EventCheckpoint.id)))
    finally:
        disable()
        store.settings.home = original_home
    assert signed == 1
