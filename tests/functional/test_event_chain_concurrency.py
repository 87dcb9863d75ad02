"""Several processes append to one chain, and a killed writer breaks nothing.

The writers are real processes with their own connections, so on PostgreSQL
the chain head row lock is what keeps the chain linear, and on SQLite the
database write lock is.
"""

import os
import signal
import subprocess
import sys
import time

from sqlalchemy import func, select

from keysteward.db import Store
from keysteward.events.models import Event
from keysteward.events.services import record_event
from keysteward.events.verify import verify_chain

WRITER = """
import sys
from keysteward.config import Settings
from keysteward.db import open_store
from keysteward.events.services import record_event, record_events

home, url, name, total = sys.argv[1], sys.argv[2], sys.argv[3], int(sys.argv[4])
store = open_store(Settings(home=home, database_url=url), migrate=False)
written = 0
while total == 0 or written < total:
    with store.session() as session:
        if written % 2:
            record_events(
                session,
                [{"actor": name, "action": f"bulk.{written + n}"} for n in range(5)],
            )
            written += 5
        else:
            record_event(session, actor=name, action=f"single.{written}")
            written += 1
    if written >= 10 and written < 16:
        print("running", flush=True)
"""
# Upper bound on waiting for a writer, so a hung writer fails the test
# instead of hanging the suite.
WAIT_LIMIT_SECONDS = 120


def _start_writer(store: Store, name: str, total: int) -> subprocess.Popen[str]:
    url = store.settings.resolved_database_url
    return subprocess.Popen(
        [sys.executable, "-c", WRITER, str(store.settings.home), url, name, str(total)],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env={**os.environ, "KEYSTEWARD_LOG_LEVEL": "ERROR"},
    )


def _event_count(store: Store) -> int:
    with store.session() as session:
        return session.scalar(select(func.count()).select_from(Event)) or 0


def test_concurrent_writers_one_chain(store: Store) -> None:
    names = ["writer-a", "writer-b", "writer-c"]
    writers = [_start_writer(store, name, 60) for name in names]
    for writer in writers:
        _out, errors = writer.communicate(timeout=WAIT_LIMIT_SECONDS)
        assert writer.returncode == 0, errors
    with store.session() as session:
        report = verify_chain(session)
        events = list(session.scalars(select(Event).order_by(Event.sequence)))
    assert report.valid, report.problems
    assert [e.sequence for e in events] == list(range(1, len(events) + 1))
    for name in names:
        own = [e.action for e in events if e.actor == name]
        assert len(own) >= 60
        assert own[0] == "single.0"


def test_killed_writer_leaves_valid_chain(store: Store) -> None:
    writer = _start_writer(store, "doomed", 0)
    assert writer.stdout is not None
    assert writer.stdout.readline().strip() == "running"
    deadline = time.monotonic() + WAIT_LIMIT_SECONDS
    while _event_count(store) < 200 and time.monotonic() < deadline:
        time.sleep(0.05)
    writer.send_signal(signal.SIGKILL)
    writer.communicate(timeout=WAIT_LIMIT_SECONDS)
    assert writer.returncode == -signal.SIGKILL
    with store.session() as session:
        record_event(session, actor="survivor", action="after.crash")
    with store.session() as session:
        report = verify_chain(session)
        newest = session.scalars(select(Event).order_by(Event.sequence.desc())).first()
    assert report.valid, report.problems
    assert report.events_checked >= 200
    assert newest is not None
    assert newest.actor == "survivor"
    assert newest.sequence == report.events_checked
