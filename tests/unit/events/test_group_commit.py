"""Group commit writes every waiting event, in one valid chain, or raises."""

import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import pytest
from sqlalchemy import event, select, text

from keysteward.db import Store
from keysteward.events.errors import EventNotRecordedError
from keysteward.events.group_commit import GroupCommitter
from keysteward.events.models import Event
from keysteward.events.verify import verify_chain


def _entry(number: int, **extra: Any) -> dict[str, Any]:
    return {
        "actor": f"service_account:reader-{number}",
        "action": "secret.read",
        "target_type": "secret",
        "target_id": "hubspot",
        "outcome": "allowed",
        "details": {"via": "api", "number": number},
        **extra,
    }


def _append_all(
    committer: GroupCommitter, entries: list[dict[str, Any]]
) -> dict[int, BaseException | None]:
    """Append ``entries`` from one thread each; return each thread's error."""
    errors: dict[int, BaseException | None] = {}

    def append(number: int, entry: dict[str, Any]) -> None:
        try:
            committer.append(entry)
            errors[number] = None
        except EventNotRecordedError as exc:
            errors[number] = exc

    threads = [
        threading.Thread(target=append, args=(number, entry))
        for number, entry in enumerate(entries)
    ]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
    return errors


@contextmanager
def _chain_held(store: Store) -> Iterator[None]:
    """Hold the lock that every event append takes until the block ends."""
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


def _wait_for_writer(committer: GroupCommitter) -> None:
    deadline = time.monotonic() + 30
    while not committer._writing:
        assert time.monotonic() < deadline, "no writer started within 30 s"
        time.sleep(0.01)


def _wait_for_queue(committer: GroupCommitter, length: int) -> None:
    deadline = time.monotonic() + 30
    while len(committer._queue) < length:
        assert time.monotonic() < deadline, "appends did not queue within 30 s"
        time.sleep(0.01)


@contextmanager
def _counted_commits(store: Store) -> Iterator[list[int]]:
    commits: list[int] = []

    def count(_session: object) -> None:
        commits.append(1)

    event.listen(store.session_factory, "after_commit", count)
    try:
        yield commits
    finally:
        event.remove(store.session_factory, "after_commit", count)


def test_single_append_commits(store: Store) -> None:
    GroupCommitter(store).append(_entry(1))
    with store.session() as session:
        recorded = session.scalars(select(Event)).one()
    assert recorded.actor == "service_account:reader-1"
    assert recorded.details == {"via": "api", "number": 1}


def test_concurrent_appends_one_chain(store: Store) -> None:
    committer = GroupCommitter(store)
    errors = _append_all(committer, [_entry(number) for number in range(16)])
    assert errors == dict.fromkeys(range(16))
    with store.session() as session:
        numbers = sorted(
            recorded.details["number"] for recorded in session.scalars(select(Event))
        )
        report = verify_chain(session)
    assert numbers == list(range(16))
    assert report.events_checked == 16
    assert report.problems == []


def test_waiting_appends_share_commit(store: Store) -> None:
    committer = GroupCommitter(store)
    with _counted_commits(store) as commits:
        with _chain_held(store):
            # The first append becomes the writer and blocks on the held
            # lock. The rest queue behind it and must share the next commit.
            first = threading.Thread(target=committer.append, args=(_entry(0),))
            first.start()
            _wait_for_writer(committer)
            waiting = threading.Thread(
                target=_append_all,
                args=(committer, [_entry(number) for number in range(1, 9)]),
            )
            waiting.start()
            _wait_for_queue(committer, 8)
        first.join(timeout=60)
        waiting.join(timeout=60)
    with store.session() as session:
        count = len(session.scalars(select(Event)).all())
        report = verify_chain(session)
    assert count == 9
    assert report.problems == []
    assert len(commits) == 2


def test_failed_entry_raises_others_commit(store: Store) -> None:
    committer = GroupCommitter(store)
    fake_token = "ghp_" + "a1B2" * 9
    entries = [_entry(0), _entry(1, details={"leak": fake_token}), _entry(2)]
    with _chain_held(store):
        first = threading.Thread(target=committer.append, args=(_entry(3),))
        first.start()
        _wait_for_writer(committer)
        results: dict[int, BaseException | None] = {}
        waiting = threading.Thread(
            target=lambda: results.update(_append_all(committer, entries))
        )
        waiting.start()
        _wait_for_queue(committer, 3)
    first.join(timeout=60)
    waiting.join(timeout=60)
    assert results[0] is None
    assert isinstance(results[1], EventNotRecordedError)
    assert results[2] is None
    with store.session() as session:
        numbers = sorted(
            recorded.details.get("number", -1)
            for recorded in session.scalars(select(Event))
        )
        report = verify_chain(session)
    assert numbers == [0, 2, 3]
    assert report.problems == []


def test_invalid_batch_size_rejected(store: Store) -> None:
    with pytest.raises(ValueError, match="max_batch 0"):
        GroupCommitter(store, max_batch=0)
