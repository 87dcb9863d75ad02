"""Store.read_snapshot: one state of the database, without blocking writers."""

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from keysteward.db import Store
from keysteward.events.models import Event
from keysteward.events.services import record_events
from keysteward.meta import StoreMeta

ENTRY = {"actor": "test:writer", "action": "test.append"}


def _count(session: Session) -> int:
    return session.scalar(select(func.count()).select_from(Event)) or 0


def test_writer_commits_during_snapshot(store: Store) -> None:
    with store.session() as session:
        record_events(session, [ENTRY])
    with store.read_snapshot() as snapshot:
        assert _count(snapshot) == 1
        # On SQLite this commit would wait out the busy timeout if the
        # snapshot held the write lock.
        with store.session() as writer:
            record_events(writer, [ENTRY])
        assert _count(snapshot) == 1
    with store.session() as session:
        assert _count(session) == 2


def test_snapshot_writes_rolled_back(store: Store) -> None:
    with store.read_snapshot() as snapshot:
        snapshot.add(StoreMeta(key="scratch", value="1"))
        snapshot.flush()
    with store.session() as session:
        assert session.get(StoreMeta, "scratch") is None
