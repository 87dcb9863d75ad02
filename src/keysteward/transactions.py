"""Running a short read-then-write transaction without losing it to a conflict.

SQLite lets one writer in at a time, and a transaction that read before
another one committed cannot write afterwards: it fails at once with
"database is locked" however long the busy timeout is. ``run_transaction``
therefore takes SQLite's write lock before the work reads anything, so it
waits its turn instead. A conflict that still happens (PostgreSQL's
serialization failures and deadlocks too) repeats the work from the start.
"""

import logging
import random
import time
from collections.abc import Callable
from typing import TypeVar

from sqlalchemy import text
from sqlalchemy.exc import OperationalError
from sqlalchemy.orm import Session

from keysteward.db import Store

log = logging.getLogger(__name__)

T = TypeVar("T")

DEFAULT_ATTEMPTS = 8
# First back-off in seconds; it doubles on each attempt, with random jitter.
BASE_DELAY = 0.005
# SQLSTATE codes PostgreSQL uses for serialization failure and deadlock.
RETRYABLE_SQLSTATES = frozenset({"40001", "40P01"})
_SQLITE_WRITE_LOCK = text("UPDATE store_meta SET value = value WHERE 0")


def is_write_conflict(exc: OperationalError) -> bool:
    """Return whether ``exc`` is a lock conflict that a retry can resolve."""
    sqlstate = getattr(exc.orig, "sqlstate", None)
    if sqlstate in RETRYABLE_SQLSTATES:
        return True
    return "database is locked" in str(exc.orig)


def run_transaction(
    store: Store,
    work: Callable[[Session], T],
    attempts: int = DEFAULT_ATTEMPTS,
    lock_first: bool = True,
) -> T:
    """Run ``work`` in one transaction, again from the start after a conflict.

    ``work`` must have no effect outside the session, because a failed
    attempt is rolled back and repeated. ``lock_first=False`` skips taking
    SQLite's write lock up front, for work that only reads.
    """
    for attempt in range(1, attempts + 1):
        try:
            with store.session() as session:
                if lock_first and session.get_bind().dialect.name == "sqlite":
                    # A write that matches no row still takes the write lock.
                    session.execute(_SQLITE_WRITE_LOCK)
                return work(session)
        except OperationalError as exc:
            if attempt == attempts or not is_write_conflict(exc):
                raise
            log.info("write conflict, retrying (attempt %d of %d)", attempt, attempts)
            time.sleep(BASE_DELAY * 2 ** (attempt - 1) * (1 + random.random()))  # noqa: S311
    raise AssertionError("unreachable")
