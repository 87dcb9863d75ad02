"""run_transaction: repeat a transaction that lost a write conflict."""

import threading
import time

import pytest
from sqlalchemy import func, insert, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from keysteward.db import Store
from keysteward.meta import StoreMeta
from keysteward.transactions import run_transaction


def test_sqlite_interleaved_writer_waits(sqlite_store: Store) -> None:
    """A writer that arrives mid-transaction queues instead of forcing a retry."""
    attempts: list[int] = []
    other_writer = threading.Thread(target=_insert_other, args=(sqlite_store,))

    def work(session: Session) -> int:
        attempts.append(len(attempts) + 1)
        session.scalar(select(func.count()).select_from(StoreMeta))
        if len(attempts) == 1:
            other_writer.start()
            time.sleep(0.2)  # let the other writer reach its BEGIN
        session.add(StoreMeta(key="mine", value="2"))
        session.flush()
        return len(attempts)

    assert run_transaction(sqlite_store, work, lock_first=False) == 1
    other_writer.join(timeout=30)
    assert not other_writer.is_alive()
    with sqlite_store.session() as session:
        keys = set(session.scalars(select(StoreMeta.key)))
    assert keys == {"other", "mine"}


def _insert_other(store: Store) -> None:
    with store.engine.begin() as other:
        other.execute(insert(StoreMeta).values(key="other", value="1"))


def test_other_errors_not_retried(store: Store) -> None:
    with store.session() as session:
        session.add(StoreMeta(key="taken", value="1"))
    attempts: list[int] = []

    def work(session: Session) -> None:
        attempts.append(1)
        session.add(StoreMeta(key="taken", value="2"))
        session.flush()

    with pytest.raises(IntegrityError):
        run_transaction(store, work)
    assert attempts == [1]


def test_sqlite_lock_first_serializes(sqlite_store: Store) -> None:
    """Concurrent read-then-write transactions all commit on the first try."""
    with sqlite_store.session() as session:
        session.add(StoreMeta(key="counter", value="0"))
    attempts: list[int] = []

    def increment(session: Session) -> None:
        attempts.append(1)
        row = session.get_one(StoreMeta, "counter")
        row.value = str(int(row.value) + 1)

    threads = [
        threading.Thread(
            target=lambda: [run_transaction(sqlite_store, increment) for _ in range(20)]
        )
        for _ in range(4)
    ]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    with sqlite_store.session() as session:
        assert session.get_one(StoreMeta, "counter").value == "80"
    assert len(attempts) == 80
