"""EventWriter commits submitted events in batches, in one valid chain, or raises.

``append_events``, the writer's insert path, is checked here too: its rows
must form the same chain as the ORM path of ``record_events``.
"""

import asyncio
import threading
import time
from collections.abc import Awaitable, Callable, Iterator, Mapping
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import select, text

from common.event_failures import REJECTED_MESSAGE, events_rejected
from keysteward.db import Store
from keysteward.errors import InvalidInputError
from keysteward.events import automatic as automatic_module
from keysteward.events import writer as writer_module
from keysteward.events.automatic import enable_automatic_checkpoints
from keysteward.events.chain import APPENDED_SPAN_KEY
from keysteward.events.errors import EventNotRecordedError
from keysteward.events.models import Event, EventChainHead, EventCheckpoint
from keysteward.events.services import append_events, record_event, record_events
from keysteward.events.verify import verify_chain
from keysteward.events.writer import STALE_ATTEMPTS, EventWriter, StaleBatchError

Entry = dict[str, Any]
FAKE_TOKEN = "ghp_" + "a1B2" * 9


def _entry(number: int, **extra: Any) -> Entry:
    return {
        "actor": f"service_account:reader-{number}",
        "action": "secret.read",
        "target_type": "secret",
        "target_id": "hubspot",
        "outcome": "allowed",
        "details": {"via": "api", "number": number},
        **extra,
    }


class Batches:
    """A ``prepare`` callback that records the size of every batch it receives.

    The writer calls ``prepare`` once in each transaction it starts, so the
    sizes show how the submitted items were grouped into commits.
    """

    def __init__(self) -> None:
        self.sizes: list[int] = []

    def prepare(self, _cursor: Any, items: list[Entry]) -> list[Mapping[str, Any]]:
        self.sizes.append(len(items))
        return list(items)


@pytest.fixture
def batches() -> Batches:
    return Batches()


@pytest.fixture
def writer(store: Store, batches: Batches) -> Iterator[EventWriter[Entry]]:
    created: EventWriter[Entry] = EventWriter(store, batches.prepare)
    yield created
    created.close()


async def _results(*awaitables: Awaitable[None]) -> list[BaseException | None]:
    """Await ``awaitables`` together; return each one's exception, or None."""
    results = await asyncio.gather(*awaitables, return_exceptions=True)
    return [result if isinstance(result, BaseException) else None for result in results]


async def _submit_all(
    writer: EventWriter[Entry], entries: list[Entry]
) -> list[BaseException | None]:
    return await _results(*(writer.submit(entry) for entry in entries))


async def _wait_until(condition: Callable[[], bool], failure: str) -> None:
    deadline = time.monotonic() + 30
    while not condition():
        assert time.monotonic() < deadline, f"{failure} within 30 s"
        await asyncio.sleep(0.01)


@contextmanager
def _chain_held(store: Store) -> Iterator[None]:
    """Hold the lock that every event append needs until the block ends."""
    with store.engine.connect() as connection:
        transaction = connection.begin()
        if connection.dialect.name == "postgresql":
            # A table lock, because the emptied test store may have no chain
            # head row for SELECT ... FOR UPDATE to lock.
            connection.execute(text("LOCK TABLE events IN EXCLUSIVE MODE"))
        else:
            connection.execute(text("UPDATE store_meta SET value = value"))
        try:
            yield
        finally:
            transaction.rollback()


@contextmanager
def _checkpoint_every_commit(store: Store, home: Path) -> Iterator[None]:
    """Sign a checkpoint after every commit that adds events.

    The checkpoints' sequences are then the last event of each transaction.
    """
    original_home = store.settings.home
    store.settings.home = home
    disable = enable_automatic_checkpoints(store, every=1)
    try:
        yield
    finally:
        disable()
        store.settings.home = original_home


def _checkpoint_sequences(store: Store) -> list[int]:
    with store.session() as session:
        query = select(EventCheckpoint.sequence).order_by(EventCheckpoint.sequence)
        return list(session.scalars(query))


async def _queue_behind_held_chain(
    store: Store,
    writer: EventWriter[Entry],
    first: Entry,
    waiting: list[Entry],
) -> list[BaseException | None]:
    """Submit ``first``, then ``waiting`` while the writer is blocked on ``first``.

    Returns the result of every submit, ``first`` included, in order.
    """
    with _chain_held(store):
        first_task = asyncio.create_task(writer.submit(first))
        # The writer took ``first`` off the queue and now waits for the lock.
        await _wait_until(
            lambda: writer._thread is not None and not writer._queue,
            "the writer did not take the first event",
        )
        waiting_tasks = [asyncio.create_task(writer.submit(e)) for e in waiting]
        await _wait_until(
            lambda: len(writer._queue) == len(waiting),
            "the waiting events were not queued",
        )
    return await _results(first_task, *waiting_tasks)


def _recorded_numbers(store: Store) -> list[int]:
    with store.session() as session:
        return sorted(
            recorded.details["number"]
            for recorded in session.scalars(select(Event))
            if "number" in recorded.details
        )


def _recorded_actions(store: Store) -> list[str]:
    with store.session() as session:
        query = select(Event.action).order_by(Event.sequence)
        return list(session.scalars(query))


def _chain_problems(store: Store) -> list[Any]:
    with store.session() as session:
        return verify_chain(session).problems


def test_single_submit_commits(store: Store, writer: EventWriter[Entry]) -> None:
    asyncio.run(writer.submit(_entry(1, request_id="req-0001", source_address="::1")))
    with store.session() as session:
        recorded = session.scalars(select(Event)).one()
    assert recorded.actor == "service_account:reader-1"
    assert recorded.details == {"via": "api", "number": 1}
    assert recorded.request_id == "req-0001"
    assert recorded.source_address == "::1"
    assert recorded.sequence == 1


def test_concurrent_submits_share_commits(
    store: Store, writer: EventWriter[Entry], batches: Batches
) -> None:
    errors = asyncio.run(_submit_all(writer, [_entry(n) for n in range(64)]))
    assert errors == [None] * 64
    assert sum(batches.sizes) == 64
    assert len(batches.sizes) < 64
    assert _recorded_numbers(store) == list(range(64))
    assert _chain_problems(store) == []


def test_waiting_submits_one_commit(
    store: Store, writer: EventWriter[Entry], batches: Batches, tmp_path: Path
) -> None:
    waiting = [_entry(n) for n in range(1, 9)]
    with _checkpoint_every_commit(store, tmp_path):
        errors = asyncio.run(
            _queue_behind_held_chain(store, writer, _entry(0), waiting)
        )
    assert errors == [None] * 9
    # One transaction for the first event, one for the eight queued behind it.
    assert batches.sizes == [1, 8]
    assert _checkpoint_sequences(store) == [1, 9]
    assert _recorded_numbers(store) == list(range(9))
    assert _chain_problems(store) == []


def test_batches_capped(store: Store, batches: Batches, tmp_path: Path) -> None:
    writer: EventWriter[Entry] = EventWriter(store, batches.prepare, max_batch=4)
    waiting = [_entry(n) for n in range(1, 10)]
    try:
        with _checkpoint_every_commit(store, tmp_path):
            errors = asyncio.run(
                _queue_behind_held_chain(store, writer, _entry(0), waiting)
            )
    finally:
        writer.close()
    assert errors == [None] * 10
    assert batches.sizes == [1, 4, 4, 1]
    assert _checkpoint_sequences(store) == [1, 5, 9, 10]
    assert _recorded_numbers(store) == list(range(10))
    assert _chain_problems(store) == []


def test_invalid_entry_fails_alone(store: Store, writer: EventWriter[Entry]) -> None:
    waiting = [_entry(0), _entry(1, details={"leak": FAKE_TOKEN}), _entry(2)]
    errors = asyncio.run(_queue_behind_held_chain(store, writer, _entry(3), waiting))
    assert errors[0] is None
    assert errors[1] is None
    assert isinstance(errors[2], EventNotRecordedError)
    assert isinstance(errors[2].__cause__, InvalidInputError)
    assert errors[3] is None
    assert _recorded_numbers(store) == [0, 2, 3]
    assert _chain_problems(store) == []


def test_failed_commit_raises(store: Store, writer: EventWriter[Entry]) -> None:
    with events_rejected(store), pytest.raises(EventNotRecordedError) as caught:
        asyncio.run(writer.submit(_entry(0)))
    assert REJECTED_MESSAGE in str(caught.value.__cause__)
    assert _recorded_numbers(store) == []
    # The writer drops its failed connection and commits the next event.
    asyncio.run(writer.submit(_entry(1)))
    assert _recorded_numbers(store) == [1]
    assert _chain_problems(store) == []


def test_failed_prepare_raises(store: Store) -> None:
    def broken(_cursor: Any, _items: list[Entry]) -> list[Mapping[str, Any]]:
        raise RuntimeError("prepare failed")

    writer: EventWriter[Entry] = EventWriter(store, broken)
    try:
        with pytest.raises(EventNotRecordedError) as caught:
            asyncio.run(writer.submit(_entry(0)))
    finally:
        writer.close()
    assert isinstance(caught.value.__cause__, RuntimeError)
    assert _recorded_numbers(store) == []


def test_prepare_sees_transaction(store: Store) -> None:
    """``prepare`` reads the store in the transaction that commits the events."""
    seen: list[int] = []

    def count_then_record(cursor: Any, items: list[Entry]) -> list[Mapping[str, Any]]:
        cursor.execute("SELECT count(*) FROM events")
        seen.append(int(cursor.fetchone()[0]))
        return list(items)

    with store.session() as session:
        record_event(session, actor="operator:test", action="store.init")
    writer: EventWriter[Entry] = EventWriter(store, count_then_record)
    try:
        asyncio.run(writer.submit(_entry(0)))
        asyncio.run(writer.submit(_entry(1)))
    finally:
        writer.close()
    assert seen == [1, 2]


class StaleUntilRefreshed:
    """A ``prepare`` that raises StaleBatchError until ``refresh`` ran enough."""

    def __init__(self, store: Store, refreshes_needed: int) -> None:
        self.store = store
        self.refreshes_needed = refreshes_needed
        self.refreshes = 0
        self.prepares = 0

    def prepare(self, _cursor: Any, items: list[Entry]) -> list[Mapping[str, Any]]:
        self.prepares += 1
        if self.refreshes < self.refreshes_needed:
            raise StaleBatchError
        return list(items)

    def refresh(self) -> None:
        # A write of its own, which on SQLite waits for the write lock: it
        # would time out if the batch's transaction were still open.
        with self.store.session() as session:
            record_event(session, actor="operator:test", action="cache.refresh")
        self.refreshes += 1


def test_stale_batch_refreshed(store: Store) -> None:
    stale = StaleUntilRefreshed(store, refreshes_needed=2)
    writer: EventWriter[Entry] = EventWriter(store, stale.prepare, stale.refresh)
    try:
        asyncio.run(writer.submit(_entry(0)))
    finally:
        writer.close()
    assert stale.refreshes == 2
    assert stale.prepares == 3
    assert _recorded_actions(store) == ["cache.refresh", "cache.refresh", "secret.read"]
    assert _chain_problems(store) == []


@pytest.mark.parametrize("inline", [False, True])
def test_stale_batch_gives_up(store: Store, inline: bool) -> None:
    stale = StaleUntilRefreshed(store, refreshes_needed=STALE_ATTEMPTS + 10)
    writer: EventWriter[Entry] = EventWriter(
        store, stale.prepare, stale.refresh, inline=inline
    )
    try:
        with pytest.raises(EventNotRecordedError) as caught:
            asyncio.run(writer.submit(_entry(0)))
    finally:
        writer.close()
    assert isinstance(caught.value.__cause__, StaleBatchError)
    assert stale.refreshes == STALE_ATTEMPTS
    assert _recorded_actions(store) == ["cache.refresh"] * STALE_ATTEMPTS


def test_stale_without_refresh_raises(store: Store) -> None:
    stale = StaleUntilRefreshed(store, refreshes_needed=1)
    writer: EventWriter[Entry] = EventWriter(store, stale.prepare)
    try:
        with pytest.raises(EventNotRecordedError) as caught:
            asyncio.run(writer.submit(_entry(0)))
    finally:
        writer.close()
    assert isinstance(caught.value.__cause__, StaleBatchError)
    assert stale.prepares == 1
    assert _recorded_numbers(store) == []


def test_submit_after_close_raises(writer: EventWriter[Entry]) -> None:
    writer.close()
    with pytest.raises(EventNotRecordedError, match="stopped"):
        asyncio.run(writer.submit(_entry(0)))


def test_close_commits_queued(store: Store, writer: EventWriter[Entry]) -> None:
    async def scenario() -> list[BaseException | None]:
        with _chain_held(store):
            tasks = [asyncio.create_task(writer.submit(_entry(0)))]
            await _wait_until(
                lambda: writer._thread is not None and not writer._queue,
                "the writer did not take the first event",
            )
            tasks += [asyncio.create_task(writer.submit(_entry(n))) for n in (1, 2, 3)]
            await _wait_until(
                lambda: len(writer._queue) == 3, "the events were not queued"
            )
            closing = asyncio.create_task(asyncio.to_thread(writer.close))
            await _wait_until(lambda: writer._closed, "close did not start")
        await closing
        assert writer._thread is not None
        assert not writer._thread.is_alive()
        # close returned only after the queued events were committed.
        assert _recorded_numbers(store) == [0, 1, 2, 3]
        return await _results(*tasks)

    assert asyncio.run(scenario()) == [None] * 4
    assert _chain_problems(store) == []


def test_cancelled_submit_still_recorded(
    store: Store, writer: EventWriter[Entry]
) -> None:
    loop_errors: list[dict[str, Any]] = []

    async def scenario() -> None:
        asyncio.get_running_loop().set_exception_handler(
            lambda _loop, context: loop_errors.append(context)
        )
        with _chain_held(store):
            first = asyncio.create_task(writer.submit(_entry(0)))
            await _wait_until(
                lambda: writer._thread is not None and not writer._queue,
                "the writer did not take the first event",
            )
            cancelled = asyncio.create_task(writer.submit(_entry(1)))
            await _wait_until(lambda: len(writer._queue) == 1, "no event queued")
            # The client went away while its read waited for the event.
            cancelled.cancel()
        await first
        with pytest.raises(asyncio.CancelledError):
            await cancelled
        # Let the writer's wake-up for the cancelled submit run.
        await _wait_until(lambda: not writer._queue, "the queue did not drain")
        await writer.submit(_entry(2))

    asyncio.run(scenario())
    assert loop_errors == []
    assert _recorded_numbers(store) == [0, 1, 2]


def test_submits_from_two_loops(store: Store, writer: EventWriter[Entry]) -> None:
    errors: dict[int, list[BaseException | None]] = {}

    def run_loop(offset: int) -> None:
        entries = [_entry(offset + n) for n in range(20)]
        errors[offset] = asyncio.run(_submit_all(writer, entries))

    threads = [threading.Thread(target=run_loop, args=(o,)) for o in (0, 100)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
    assert errors == {0: [None] * 20, 100: [None] * 20}
    assert _recorded_numbers(store) == [*range(20), *range(100, 120)]
    assert _chain_problems(store) == []


def test_commits_trigger_checkpoints(
    store: Store, writer: EventWriter[Entry], tmp_path: Path
) -> None:
    original_home = store.settings.home
    store.settings.home = tmp_path
    disable = enable_automatic_checkpoints(store, every=5)
    try:
        for number in range(7):
            asyncio.run(writer.submit(_entry(number)))
        with store.session() as session:
            sequences = list(session.scalars(select(EventCheckpoint.sequence)))
    finally:
        disable()
        store.settings.home = original_home
    assert sequences == [5]


def test_invalid_batch_size_rejected(store: Store) -> None:
    with pytest.raises(ValueError, match="max_batch 0"):
        EventWriter(store, Batches().prepare, max_batch=0)


def test_append_mixes_with_record(store: Store) -> None:
    with store.session() as session:
        record_events(session, [_entry(0), _entry(1)])
    with store.session() as session:
        last = append_events(
            session,
            [
                _entry(2, request_id="req-0002", source_address="127.0.0.2"),
                {"actor": "operator:test", "action": "secret.put", "target_id": 42},
            ],
        )
        assert last == 4
        assert session.info[APPENDED_SPAN_KEY].end_sequence == 4

    with store.session() as session:
        record_event(session, actor="operator:test", action="secret.retire")
        session.flush()
        assert append_events(session, [_entry(6)]) == 6

    with store.session() as session:
        rows = session.scalars(select(Event).order_by(Event.sequence)).all()
        report = verify_chain(session)
    assert [row.sequence for row in rows] == [1, 2, 3, 4, 5, 6]
    assert report.problems == []
    assert report.events_checked == 6

    appended = rows[2]
    assert appended.request_id == "req-0002"
    assert appended.source_address == "127.0.0.2"
    assert appended.details == {"via": "api", "number": 2}
    assert appended.occurred_at is not None
    plain = rows[3]
    assert plain.outcome == "success"
    assert plain.target_id == "42"
    assert plain.details == {}


def test_append_nothing_writes_nothing(store: Store) -> None:
    with store.session() as session:
        record_events(session, [_entry(0)])
    with store.session() as session:
        assert append_events(session, []) == 1
    assert _recorded_numbers(store) == [0]


@pytest.mark.parametrize(
    ("bad", "message"),
    [
        ({"action": "secret.read"}, "entry 1 is missing actor"),
        ({**_entry(1), "colour": "red"}, "entry 1 has unknown field"),
        (_entry(1, details={"leak": FAKE_TOKEN}), "looks like a secret"),
        (_entry(1, details={"when": {1, 2}}), "not valid JSON"),
    ],
    ids=["missing-actor", "unknown-field", "secret", "not-json"],
)
def test_append_rejects_before_writing(store: Store, bad: Entry, message: str) -> None:
    with store.session() as session:
        record_events(session, [_entry(0)])
    with store.session() as session:
        with pytest.raises(InvalidInputError, match=message):
            append_events(session, [_entry(9), bad])
        # Nothing was sent, so the transaction can still commit.
        head = session.get_one(EventChainHead, 1)
        assert head.last_sequence == 1
    assert _recorded_numbers(store) == [0]
    assert _chain_problems(store) == []


def test_append_rebuilds_missing_head(store: Store) -> None:
    with store.session() as session:
        record_events(session, [_entry(0), _entry(1)])
    with store.engine.begin() as connection:
        connection.execute(text("DELETE FROM event_chain_head"))
    with store.session() as session:
        assert append_events(session, [_entry(2)]) == 3
    assert _recorded_numbers(store) == [0, 1, 2]
    assert _chain_problems(store) == []


@pytest.fixture
def inline_writer(store: Store, batches: Batches) -> Iterator[EventWriter[Entry]]:
    created: EventWriter[Entry] = EventWriter(store, batches.prepare, inline=True)
    yield created
    created.close()


def test_inline_submits_share_commit(
    store: Store, inline_writer: EventWriter[Entry], batches: Batches
) -> None:
    errors = asyncio.run(_submit_all(inline_writer, [_entry(n) for n in range(64)]))
    assert errors == [None] * 64
    # Every submit ran before the one scheduled flush.
    assert batches.sizes == [64]
    assert _recorded_numbers(store) == list(range(64))
    assert _chain_problems(store) == []


def test_inline_invalid_entry_fails_alone(
    store: Store, inline_writer: EventWriter[Entry]
) -> None:
    entries = [_entry(0), _entry(1, details={"leak": FAKE_TOKEN}), _entry(2)]
    errors = asyncio.run(_submit_all(inline_writer, entries))
    assert errors[0] is None
    assert isinstance(errors[1], EventNotRecordedError)
    assert isinstance(errors[1].__cause__, InvalidInputError)
    assert errors[2] is None
    assert _recorded_numbers(store) == [0, 2]
    assert _chain_problems(store) == []


def test_inline_failed_commit_raises(
    store: Store, inline_writer: EventWriter[Entry]
) -> None:
    with events_rejected(store), pytest.raises(EventNotRecordedError):
        asyncio.run(inline_writer.submit(_entry(0)))
    asyncio.run(inline_writer.submit(_entry(1)))
    assert _recorded_numbers(store) == [1]


def test_inline_submit_after_close_raises(
    inline_writer: EventWriter[Entry],
) -> None:
    inline_writer.close()
    with pytest.raises(EventNotRecordedError):
        asyncio.run(inline_writer.submit(_entry(0)))


class TaskRecorder(Batches):
    """Batches that also record which task ran each ``prepare``.

    None means the loop's scheduled flush ran it, outside any task.
    """

    def __init__(self) -> None:
        super().__init__()
        self.tasks: list[asyncio.Task[Any] | None] = []

    def prepare(self, cursor: Any, items: list[Entry]) -> list[Mapping[str, Any]]:
        self.tasks.append(asyncio.current_task())
        return super().prepare(cursor, items)


async def _submit_with_idle_tasks(
    store: Store, recorder: TaskRecorder, entries: list[Entry], *, together: bool
) -> list[BaseException | None]:
    """Submit each entry from a task of its own, one after another or together."""
    # The running test task plays the server's own task, as in the app.
    created: EventWriter[Entry] = EventWriter(
        store,
        recorder.prepare,
        inline=True,
        idle_tasks=frozenset(asyncio.all_tasks()),
    )
    try:
        if together:
            tasks = [asyncio.create_task(created.submit(entry)) for entry in entries]
            return await _results(*tasks)
        results = []
        for entry in entries:
            results.extend(await _results(asyncio.create_task(created.submit(entry))))
        return results
    finally:
        created.close()


def test_alone_submit_commits_at_once(store: Store) -> None:
    recorder = TaskRecorder()
    entries = [_entry(0), _entry(1)]
    errors = asyncio.run(
        _submit_with_idle_tasks(store, recorder, entries, together=False)
    )
    assert errors == [None, None]
    assert recorder.sizes == [1, 1]
    # Committed inside the submitting task, not in a later flush.
    assert None not in recorder.tasks
    assert _recorded_numbers(store) == [0, 1]


def test_alone_failed_commit_raises(store: Store) -> None:
    recorder = TaskRecorder()
    with events_rejected(store):
        errors = asyncio.run(
            _submit_with_idle_tasks(store, recorder, [_entry(0)], together=False)
        )
    assert isinstance(errors[0], EventNotRecordedError)
    assert _recorded_numbers(store) == []


def test_busy_loop_defers_commit(store: Store) -> None:
    recorder = TaskRecorder()
    entries = [_entry(n) for n in range(8)]
    errors = asyncio.run(
        _submit_with_idle_tasks(store, recorder, entries, together=True)
    )
    assert errors == [None] * 8
    # Each submit saw the other tasks, so all eight waited for one flush.
    assert recorder.sizes == [8]
    assert recorder.tasks == [None]


def test_no_idle_tasks_defers_commit(store: Store) -> None:
    recorder = TaskRecorder()
    created: EventWriter[Entry] = EventWriter(store, recorder.prepare, inline=True)
    try:
        asyncio.run(created.submit(_entry(0)))
    finally:
        created.close()
    assert recorder.sizes == [1]
    assert recorder.tasks == [None]
    assert _recorded_numbers(store) == [0]


def test_inline_lock_wait_keeps_loop(sqlite_store: Store, batches: Batches) -> None:
    """While another connection holds the write lock, the loop goes on."""
    ticks: list[float] = []

    async def scenario() -> bool:
        created: EventWriter[Entry] = EventWriter(
            sqlite_store, batches.prepare, inline=True
        )

        async def tick() -> None:
            while True:
                ticks.append(time.monotonic())
                await asyncio.sleep(0.005)

        ticker = asyncio.create_task(tick())
        try:
            with _chain_held(sqlite_store):
                submitted = asyncio.create_task(created.submit(_entry(0)))
                await asyncio.sleep(0.3)
                waited = not submitted.done()
            await asyncio.wait_for(submitted, timeout=10)
            return waited
        finally:
            ticker.cancel()
            created.close()

    waited = asyncio.run(scenario())
    assert waited
    # A loop blocked in the lock wait would have ticked once or twice.
    assert len(ticks) >= 20
    assert _recorded_numbers(sqlite_store) == [0]


def test_inline_lock_wait_gives_up(
    sqlite_store: Store, batches: Batches, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(writer_module, "LOCK_WAIT_SECONDS", 0.2)

    async def scenario() -> None:
        created: EventWriter[Entry] = EventWriter(
            sqlite_store, batches.prepare, inline=True
        )
        try:
            with _chain_held(sqlite_store):
                submitted = asyncio.create_task(created.submit(_entry(0)))
                await asyncio.sleep(0.6)
                assert submitted.done()
                await submitted
        finally:
            created.close()

    with pytest.raises(EventNotRecordedError, match="stayed locked"):
        asyncio.run(scenario())
    assert _recorded_numbers(sqlite_store) == []


class ThreadRecordingRefresh(StaleUntilRefreshed):
    """StaleUntilRefreshed that also records the thread of each refresh."""

    def __init__(self, store: Store, refreshes_needed: int) -> None:
        super().__init__(store, refreshes_needed)
        self.threads: list[int] = []

    def refresh(self) -> None:
        self.threads.append(threading.get_ident())
        super().refresh()


def test_inline_refresh_off_loop(store: Store) -> None:
    stale = ThreadRecordingRefresh(store, refreshes_needed=2)
    created: EventWriter[Entry] = EventWriter(
        store, stale.prepare, stale.refresh, inline=True
    )
    try:
        asyncio.run(created.submit(_entry(0)))
    finally:
        created.close()
    assert stale.refreshes == 2
    assert threading.get_ident() not in stale.threads
    assert _recorded_actions(store) == ["cache.refresh", "cache.refresh", "secret.read"]


def test_inline_checkpoint_signed_off_loop(
    store: Store, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    signing_threads: list[str] = []
    sign = automatic_module._checkpoint_if_due

    def recording_sign(*args: Any) -> int:
        signing_threads.append(threading.current_thread().name)
        return sign(*args)

    monkeypatch.setattr(automatic_module, "_checkpoint_if_due", recording_sign)
    created: EventWriter[Entry] = EventWriter(store, Batches().prepare, inline=True)
    with _checkpoint_every_commit(store, tmp_path):
        try:
            asyncio.run(created.submit(_entry(0)))
        finally:
            created.close()
        deadline = time.monotonic() + 10
        while not _checkpoint_sequences(store) and time.monotonic() < deadline:
            time.sleep(0.01)

    assert _checkpoint_sequences(store) == [1]
    assert signing_threads == ["keysteward-checkpoint"]


def test_inline_lock_wait_counted_per_item(
    sqlite_store: Store, batches: Batches, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A read that came late in a long lock hold gets its own full wait."""
    monkeypatch.setattr(writer_module, "LOCK_WAIT_SECONDS", 0.5)

    async def scenario() -> list[BaseException | None]:
        created: EventWriter[Entry] = EventWriter(
            sqlite_store, batches.prepare, inline=True
        )
        try:
            with _chain_held(sqlite_store):
                early = asyncio.create_task(created.submit(_entry(0)))
                await asyncio.sleep(0.4)
                late = asyncio.create_task(created.submit(_entry(1)))
                await asyncio.sleep(0.3)
            return await _results(early, late)
        finally:
            created.close()

    early_error, late_error = asyncio.run(scenario())
    assert isinstance(early_error, EventNotRecordedError)
    assert late_error is None
    assert _recorded_numbers(sqlite_store) == [1]
