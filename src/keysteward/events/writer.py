"""Recording events for asyncio handlers in batched commits, off or on the loop.

A handler awaits ``EventWriter.submit(item)``. The writer (a thread, or the
handlers' event loop when inline) takes every item queued so far, calls
``prepare`` for their events inside one transaction, commits them together
(one chain-head lock, one commit) and then wakes each handler. ``submit``
returns only after the item's event is committed, and raises
EventNotRecordedError when it could not be, so a handler releases nothing
that is not on record.

``prepare`` runs inside the transaction that records the events, with a
driver cursor, so it can check the store and change the items (for example,
decide them again) before they are committed. It raises StaleBatchError when
the items need state it must reload first. The writer then calls
``refresh`` outside the transaction and starts the batch again.
"""

import asyncio
import logging
import threading
import time
from collections.abc import Callable, Collection, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Generic, TypeVar

from sqlalchemy import PoolProxiedConnection

from keysteward.db import Store
from keysteward.events.appender import append_rows
from keysteward.events.automatic import events_committed, trusted_point
from keysteward.events.encoding import EncodedEvent
from keysteward.events.errors import EventNotRecordedError
from keysteward.events.seal import head_seal_key
from keysteward.transactions import (
    BASE_DELAY,
    DEFAULT_ATTEMPTS,
    RETRYABLE_SQLSTATES,
)

log = logging.getLogger(__name__)

T = TypeVar("T")

# Upper bound on events per transaction, so one commit stays short even when
# hundreds of requests wait at once.
DEFAULT_MAX_BATCH = 256
COMMIT_ATTEMPTS = DEFAULT_ATTEMPTS
# Times a batch is prepared again after its cached state went out of date.
STALE_ATTEMPTS = 5
# How long an inline writer retries an item while another connection has
# SQLite's write lock, counted from the item's submit. It equals the busy
# timeout that db.py gives every other connection.
LOCK_WAIT_SECONDS = 30.0
# The pauses between those retries, in seconds. The first retry comes at the
# next pass of the loop, because another server process's commit holds the
# lock for about 0.1 ms. Later pauses start at the first and double up to the
# largest.
FIRST_LOCK_RETRY = 0.0002
MAX_LOCK_RETRY = 0.005

# Called in the batch's transaction with a driver cursor (sqlite3 or
# psycopg), returns the event entries of the items. Entries encoded before
# the batch began (events.encoding) keep the chain head's lock short.
Prepare = Callable[[Any, list[T]], Sequence[Mapping[str, Any] | EncodedEvent]]


class StaleBatchError(Exception):
    """The signal from ``prepare`` that its cached state is out of date.

    The writer rolls the transaction back, calls ``refresh`` and prepares
    the batch again in a new transaction.
    """


class _Deferred(Exception):
    """The signal that an inline batch must wait, without blocking the loop.

    ``refresh`` is True when the cached state must be reloaded first, and
    False when another connection holds SQLite's write lock.
    """

    def __init__(self, refresh: bool) -> None:
        super().__init__("refresh" if refresh else "locked")
        self.refresh = refresh


def _is_conflict(exc: BaseException) -> bool:
    """Return whether ``exc`` is a lock conflict that a retry can resolve."""
    if getattr(exc, "sqlstate", None) in RETRYABLE_SQLSTATES:
        return True
    return "database is locked" in str(exc)


@dataclass
class _Submitted(Generic[T]):
    item: T
    future: "asyncio.Future[None]"
    loop: asyncio.AbstractEventLoop
    queued_at: float = field(default_factory=time.monotonic)


class EventWriter(Generic[T]):
    """Commit the events of items submitted from event loops, in batches.

    With ``inline`` the commits run on the event loop of the submitting
    handlers instead of a thread: the first submit of a pass of the loop
    schedules one flush, which commits everything submitted until it runs.
    That saves two thread hand-offs per batch, and suits SQLite, whose commit
    is a local write, but not PostgreSQL, whose round trips would stall the
    loop. An inline writer takes submits from one event loop only.

    An inline writer never blocks the loop. While another connection has
    SQLite's write lock, the batch is tried again later (for up to
    LOCK_WAIT_SECONDS per item), and a reload of stale state runs in a thread.

    ``idle_tasks`` are the tasks that the loop runs when it serves no
    request, such as the server's own. When an inline submit finds that the
    loop has no task besides those and its own, no other item can join the
    batch, so it commits at once instead of waiting two passes of the loop.
    """

    def __init__(
        self,
        store: Store,
        prepare: Prepare[T],
        refresh: Callable[[], object] | None = None,
        max_batch: int = DEFAULT_MAX_BATCH,
        inline: bool = False,
        idle_tasks: Collection["asyncio.Task[Any]"] | None = None,
    ) -> None:
        if max_batch < 1:
            raise ValueError(f"invalid max_batch {max_batch}: must be at least 1")
        self._store = store
        self._dialect = store.engine.dialect
        self._seal_key = head_seal_key(store.settings.home)
        self._prepare = prepare
        self._refresh = refresh
        self._max_batch = max_batch
        self._condition = threading.Condition()
        self._queue: list[_Submitted[T]] = []
        self._thread: threading.Thread | None = None
        self._closed = False
        # Used by the writer thread only, or by the event loop when inline.
        self._pooled_connection: PoolProxiedConnection | None = None
        self._inline = inline
        self._idle_tasks = idle_tasks
        self._flush_scheduled = False
        # Inline only: the pause before the next try while the write lock is
        # taken (0 for the next pass of the loop), and the reloads since the
        # last commit.
        self._lock_retry = 0.0
        self._reloads = 0

    async def submit(self, item: T) -> None:
        """Wait until the event of ``item`` is committed.

        Raises EventNotRecordedError, with the cause chained, when its
        transaction failed or the writer is closed.
        """
        loop = asyncio.get_running_loop()
        future: asyncio.Future[None] = loop.create_future()
        if self._inline:
            if self._closed:
                raise EventNotRecordedError("the event writer is stopped")
            submitted = _Submitted(item, future, loop)
            if not self._queue and not self._flush_scheduled and self._alone(loop):
                # Settles the future, unless the batch had to wait.
                self._write([submitted])
                await future
                return
            self._queue.append(submitted)
            if not self._flush_scheduled:
                self._flush_scheduled = True
                # Runs after the callbacks already ready, so the requests
                # read in the same pass of the loop share the commit.
                loop.call_soon(self._flush_inline)
            await future
            return
        with self._condition:
            if self._closed:
                raise EventNotRecordedError("the event writer is stopped")
            self._queue.append(_Submitted(item, future, loop))
            if self._thread is None:
                self._thread = threading.Thread(
                    target=self._run, name="keysteward-event-writer", daemon=True
                )
                self._thread.start()
            self._condition.notify()
        await future

    def _alone(self, loop: asyncio.AbstractEventLoop) -> bool:
        """Return whether the loop runs no task but the idle ones and this one."""
        if self._idle_tasks is None:
            return False
        current = asyncio.current_task(loop)
        return all(
            task is current or task in self._idle_tasks
            for task in asyncio.all_tasks(loop)
        )

    def close(self, timeout: float = 30.0) -> None:
        """Commit what is queued, then stop the writer thread."""
        with self._condition:
            self._closed = True
            self._condition.notify()
            thread = self._thread
        if thread is not None:
            thread.join(timeout)
        if self._inline:
            # Called on the writer's event loop, as every inline flush is.
            self._flush_inline()
            if self._queue:
                # Waiting for the write lock or a reload, which will not come.
                stopped = EventNotRecordedError("the event writer is stopped")
                self._settle(self._queue, stopped)
                self._queue = []
            if self._pooled_connection is not None:
                self._release_connection()

    def _flush_inline(self) -> None:
        self._flush_scheduled = False
        while self._queue:
            batch = self._queue[: self._max_batch]
            del self._queue[: self._max_batch]
            if not self._write(batch):
                # The batch waits again, and a later flush was scheduled.
                return

    def _defer(self, batch: list[_Submitted[T]], deferred: _Deferred) -> None:
        """Queue ``batch`` again and schedule the flush that retries it."""
        self._queue[:0] = batch
        self._fail_expired()
        if not self._queue:
            self._flush_scheduled = False
            return
        self._flush_scheduled = True
        loop = self._queue[0].loop
        if deferred.refresh:
            self._reloads += 1
            # The reload reads the store, which may wait for the write lock
            # too, so it runs in a thread and the flush follows it.
            reload = loop.run_in_executor(None, self._refresh_or_log)
            reload.add_done_callback(lambda _done: self._flush_inline())
            return
        if self._lock_retry == 0.0:
            loop.call_soon(self._flush_inline)
            self._lock_retry = FIRST_LOCK_RETRY
            return
        loop.call_later(self._lock_retry, self._flush_inline)
        self._lock_retry = min(self._lock_retry * 2, MAX_LOCK_RETRY)

    def _fail_expired(self) -> None:
        """Fail the queued items that have waited longer than LOCK_WAIT_SECONDS."""
        oldest_allowed = time.monotonic() - LOCK_WAIT_SECONDS
        expired = [item for item in self._queue if item.queued_at < oldest_allowed]
        if not expired:
            return
        self._queue = [item for item in self._queue if item.queued_at >= oldest_allowed]
        log.error(
            "event commit failed for %d item(s): the database stayed locked by "
            "another writer, or the cached state stale, for %.0f s",
            len(expired),
            LOCK_WAIT_SECONDS,
        )
        error = EventNotRecordedError(
            "the event log stayed locked by another writer; retry later"
        )
        self._settle(expired, error)

    def _refresh_or_log(self) -> None:
        # The flush after it tries the batch again, and fails it after
        # STALE_ATTEMPTS reloads.
        assert self._refresh is not None
        try:
            self._refresh()
        except Exception as exc:
            log.error("reloading the event writer's cached state failed: %s", exc)

    def _run(self) -> None:
        while True:
            with self._condition:
                while not self._queue and not self._closed:
                    self._condition.wait()
                if not self._queue:
                    if self._pooled_connection is not None:
                        self._pooled_connection.close()
                        self._pooled_connection = None
                    return
                batch = self._queue[: self._max_batch]
                del self._queue[: self._max_batch]
            self._write(batch)

    def _write(self, batch: list[_Submitted[T]]) -> bool:
        """Commit the batch's events and settle it. Return False when it must wait."""
        items = [submitted.item for submitted in batch]
        try:
            self._commit(items)
        except _Deferred as deferred:
            self._defer(batch, deferred)
            return False
        except Exception as exc:
            if len(batch) > 1:
                # One invalid entry must not fail the others, so each is
                # retried in its own transaction.
                log.warning(
                    "commit of %d events failed, committing them one by one: %s",
                    len(batch),
                    exc,
                )
                for index, submitted in enumerate(batch):
                    if not self._write([submitted]):
                        # The rest wait behind it, in their order.
                        self._queue[1:1] = batch[index + 1 :]
                        return False
                return True
            log.error("event commit failed: %s", exc)
            error = EventNotRecordedError("the event was not committed")
            error.__cause__ = exc
            self._reloads = 0
            self._settle(batch, error)
            return True
        self._lock_retry = 0.0
        self._reloads = 0
        self._settle(batch, None)
        return True

    def _commit(self, items: list[T]) -> None:
        """Record the items' events in one transaction, repeated after a conflict."""
        conflicts = stale = 0
        while True:
            driver: Any = self._connection().driver_connection
            cursor = driver.cursor()
            is_sqlite = self._dialect.name != "postgresql"
            try:
                if is_sqlite:
                    # sqlite3 runs in autocommit mode here (see db.py), so the
                    # transaction and its write lock start explicitly.
                    cursor.execute("BEGIN IMMEDIATE")
                span = append_rows(
                    cursor,
                    self._dialect,
                    self._prepare(cursor, items),
                    write_locked=is_sqlite,
                    seal_key=self._seal_key,
                    trusted=trusted_point(self._store),
                )
                driver.commit()
            except StaleBatchError:
                self._rollback()
                stale += 1
                if self._inline:
                    stale = self._reloads + 1
                if stale > STALE_ATTEMPTS or self._refresh is None:
                    raise
                if self._inline:
                    raise _Deferred(refresh=True) from None
                self._refresh()
                continue
            except Exception as exc:
                self._rollback()
                if self._inline and _is_conflict(exc):
                    raise _Deferred(refresh=False) from None
                conflicts += 1
                if conflicts >= COMMIT_ATTEMPTS or not _is_conflict(exc):
                    raise
                log.info("event commit conflict, retrying (attempt %d)", conflicts)
                time.sleep(BASE_DELAY * 2 ** (conflicts - 1))
                continue
            finally:
                cursor.close()
            # Inline, a due checkpoint is signed in a thread, because its
            # session may wait for SQLite's write lock and must not stall the loop.
            events_committed(self._store, span, in_background=self._inline)
            return

    def _connection(self) -> PoolProxiedConnection:
        # One driver connection for the writer thread's lifetime: a pool
        # checkout, a Session and compiled SQL per batch would cost more than
        # the inserts.
        if self._pooled_connection is None:
            self._pooled_connection = self._store.engine.raw_connection()
            if self._inline and self._dialect.name == "sqlite":
                # A taken write lock fails BEGIN at once instead of blocking
                # the event loop, and the batch is retried later (_defer).
                self._pooled_connection.driver_connection.execute(  # type: ignore[union-attr]
                    "PRAGMA busy_timeout = 0"
                )
        return self._pooled_connection

    def _release_connection(self) -> None:
        """Return the connection to the pool with the busy timeout it came with."""
        assert self._pooled_connection is not None
        if self._inline and self._dialect.name == "sqlite":
            try:
                self._pooled_connection.driver_connection.execute(  # type: ignore[union-attr]
                    f"PRAGMA busy_timeout = {int(LOCK_WAIT_SECONDS * 1000)}"
                )
            except Exception as exc:
                log.warning("dropping the event writer's connection: %s", exc)
                self._discard_connection()
                return
        self._pooled_connection.close()
        self._pooled_connection = None

    def _rollback(self) -> None:
        if self._pooled_connection is None:
            return
        try:
            self._pooled_connection.driver_connection.rollback()  # type: ignore[union-attr]
        except Exception as exc:
            # A connection that cannot roll back is broken, so the next batch
            # opens a new one.
            log.warning("dropping the event writer's connection: %s", exc)
            self._discard_connection()

    def _discard_connection(self) -> None:
        if self._pooled_connection is not None:
            self._pooled_connection.invalidate()
            self._pooled_connection.close()
            self._pooled_connection = None

    def _settle(self, batch: list[_Submitted[T]], error: BaseException | None) -> None:
        if self._inline:
            _resolve([submitted.future for submitted in batch], error)
            return
        # One wake-up per event loop, not per item: each call_soon_threadsafe
        # writes to the loop's self-pipe.
        by_loop: dict[asyncio.AbstractEventLoop, list[asyncio.Future[None]]] = {}
        for submitted in batch:
            by_loop.setdefault(submitted.loop, []).append(submitted.future)
        for loop, futures in by_loop.items():
            try:
                loop.call_soon_threadsafe(_resolve, futures, error)
            except RuntimeError:
                # The loop closed at server shutdown, so no handler waits any more.
                continue


def _resolve(
    futures: list["asyncio.Future[None]"], error: BaseException | None
) -> None:
    for future in futures:
        # A handler cancelled while waiting (client gone) has a done future.
        if future.done():
            continue
        if error is None:
            future.set_result(None)
        else:
            future.set_exception(error)
