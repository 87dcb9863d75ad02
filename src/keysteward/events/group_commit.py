"""Group commit: events from concurrent requests written in shared transactions.

Each event append takes the chain-head lock and a commit, so requests that
each append one event queue behind one another on that lock. With
``GroupCommitter.append`` the first caller to find no write in progress
becomes the writer: it commits every event queued so far, its own included,
in one transaction through ``record_events``, then wakes the callers whose
events it wrote. Callers that arrive during a write queue up for the next
one. ``append`` returns only after the caller's event is committed, and
raises when it could not be, so an audited action can wait for its event.
"""

import logging
import threading
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from keysteward.db import Store
from keysteward.events.errors import EventNotRecordedError
from keysteward.events.services import record_events
from keysteward.transactions import run_transaction

log = logging.getLogger(__name__)

# Upper bound on events per transaction, so one commit stays short even when
# hundreds of requests wait at once.
DEFAULT_MAX_BATCH = 256


@dataclass
class _PendingEvent:
    entry: Mapping[str, Any]
    done: bool = False
    error: BaseException | None = field(default=None, repr=False)


class GroupCommitter:
    """Commit events appended by many threads in as few transactions as possible."""

    def __init__(self, store: Store, max_batch: int = DEFAULT_MAX_BATCH) -> None:
        if max_batch < 1:
            raise ValueError(f"invalid max_batch {max_batch}: must be at least 1")
        self._store = store
        self._max_batch = max_batch
        self._condition = threading.Condition()
        self._queue: list[_PendingEvent] = []
        self._writing = False

    def append(self, entry: Mapping[str, Any]) -> None:
        """Commit one event (the keyword arguments of ``record_event``).

        Blocks until the event is committed. Raises EventNotRecordedError,
        with the cause chained, when its transaction failed.
        """
        pending = _PendingEvent(entry)
        with self._condition:
            self._queue.append(pending)
        while True:
            with self._condition:
                while self._writing and not pending.done:
                    self._condition.wait()
                if pending.done:
                    break
                self._writing = True
                batch = self._queue[: self._max_batch]
                del self._queue[: self._max_batch]
            try:
                self._write(batch)
            finally:
                with self._condition:
                    # Only an exception outside Exception (a KeyboardInterrupt)
                    # leaves events unfinished, and their callers must not
                    # wait for them forever.
                    for unfinished in batch:
                        if not unfinished.done:
                            unfinished.error = EventNotRecordedError(
                                "the event writer stopped before the commit"
                            )
                            unfinished.done = True
                    self._writing = False
                    self._condition.notify_all()
        if pending.error is not None:
            raise EventNotRecordedError(
                f"event {entry.get('action')!r} on {entry.get('target_id')!r} "
                "was not committed"
            ) from pending.error

    def _write(self, batch: list[_PendingEvent]) -> None:
        try:
            self._commit([pending.entry for pending in batch])
        except Exception as exc:
            if len(batch) == 1:
                self._finish(batch, exc)
                return
            # One invalid entry must not fail the others, so each is retried
            # in its own transaction.
            log.warning(
                "group commit of %d events failed, committing them one by one: %s",
                len(batch),
                exc,
            )
            for pending in batch:
                self._write([pending])
            return
        self._finish(batch, None)

    def _commit(self, entries: list[Mapping[str, Any]]) -> None:
        run_transaction(self._store, lambda session: record_events(session, entries))

    def _finish(self, batch: list[_PendingEvent], error: BaseException | None) -> None:
        if error is not None:
            log.error("event commit failed for %d event(s): %s", len(batch), error)
        with self._condition:
            for pending in batch:
                pending.error = error
                pending.done = True
