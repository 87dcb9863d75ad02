"""Jobs that run once per interval across processes, on both backends."""

import socket
import subprocess
import sys
import time
from datetime import datetime, timedelta
from itertools import pairwise

import pytest
from sqlalchemy import select

from keysteward.clock import utcnow
from keysteward.cluster.jobs import (
    FINISHED_PREFIX,
    Job,
    JobRunner,
    job_lease_name,
    parse_intervals,
    run_job_once,
    scheduled_jobs,
)
from keysteward.db import Store
from keysteward.errors import InvalidInputError
from keysteward.events.models import Event
from keysteward.rotation.models import RotationLease


def counting_job(calls: list[str], interval: timedelta = timedelta(hours=1)) -> Job:
    def task(_store: Store) -> str:
        calls.append("ran")
        return f"call {len(calls)}"

    return Job("count", interval, task)


def job_events(store: Store) -> list[Event]:
    with store.session() as session:
        query = select(Event).where(Event.action == "cluster.job.run")
        return list(session.scalars(query.order_by(Event.id)))


def exited_pid() -> int:
    child = subprocess.Popen([sys.executable, "-c", "pass"])
    child.wait()
    return child.pid


def put_lease(store: Store, name: str, owner: str, expires_at: datetime) -> None:
    with store.session() as session:
        session.add(
            RotationLease(
                name=job_lease_name(name),
                owner=owner,
                acquired_at=utcnow(),
                expires_at=expires_at,
            )
        )


def test_run_job_once_per_interval(store: Store) -> None:
    calls: list[str] = []
    job = counting_job(calls)

    first = run_job_once(store, job)
    second = run_job_once(store, job)

    assert first is True
    assert second is False
    assert calls == ["ran"]
    events = job_events(store)
    assert len(events) == 1
    assert events[0].outcome == "success"
    assert events[0].details["summary"] == "call 1"


def test_run_job_once_after_expiry(store: Store) -> None:
    calls: list[str] = []
    put_lease(store, "count", "other-host:1:ab", utcnow() - timedelta(seconds=1))

    assert run_job_once(store, counting_job(calls)) is True
    assert calls == ["ran"]


def test_failed_job_records_failure(store: Store) -> None:
    def broken(_store: Store) -> str:
        raise RuntimeError("downstream unavailable")

    job = Job("broken", timedelta(hours=1), broken)

    assert run_job_once(store, job) is True
    # The failed run still keeps the interval, so no process retries at once.
    assert run_job_once(store, job) is False
    events = job_events(store)
    assert [event.outcome for event in events] == ["failure"]
    assert events[0].details["summary"] == "RuntimeError"


def test_dead_holder_taken_over(store: Store) -> None:
    calls: list[str] = []
    dead_owner = f"{socket.gethostname()}:{exited_pid()}:ab"
    put_lease(store, "count", dead_owner, utcnow() + timedelta(hours=1))

    assert run_job_once(store, counting_job(calls)) is True
    assert calls == ["ran"]


def test_finished_run_not_repeated(store: Store) -> None:
    calls: list[str] = []
    dead_owner = f"{socket.gethostname()}:{exited_pid()}:ab"
    put_lease(
        store, "count", FINISHED_PREFIX + dead_owner, utcnow() + timedelta(hours=1)
    )

    assert run_job_once(store, counting_job(calls)) is False
    assert calls == []


def test_runners_share_one_schedule(store: Store) -> None:
    calls: list[str] = []
    interval = timedelta(seconds=0.3)
    runners = [JobRunner(store, [counting_job(calls, interval)]) for _ in range(3)]
    for runner in runners:
        runner.start()
    deadline = time.monotonic() + 20
    while len(job_events(store)) < 4 and time.monotonic() < deadline:
        time.sleep(0.05)
    for runner in runners:
        runner.stop()

    events = job_events(store)
    assert len(events) >= 4
    starts = sorted(
        datetime.fromisoformat(event.details["started_at"]) for event in events
    )
    gaps = [later - earlier for earlier, later in pairwise(starts)]
    # Each run starts only after the previous run's lease expired.
    assert min(gaps) >= interval
    assert len(calls) == len(events)


def test_parse_intervals_reads_entries() -> None:
    parsed = parse_intervals("rotation=60, audit=3600")

    assert parsed == {
        "rotation": timedelta(seconds=60),
        "audit": timedelta(seconds=3600),
    }


@pytest.mark.parametrize(
    ("text", "fragment"),
    [
        ("backup=60", "unknown job 'backup'"),
        ("rotation=soon", "SECONDS a positive number"),
        ("rotation=0", "SECONDS a positive number"),
        ("rotation", "SECONDS a positive number"),
    ],
)
def test_parse_intervals_rejects(text: str, fragment: str) -> None:
    with pytest.raises(InvalidInputError) as caught:
        parse_intervals(text)
    assert fragment in str(caught.value)


def test_scheduled_jobs_defaults() -> None:
    jobs = {job.name: job.interval for job in scheduled_jobs({"audit": timedelta(1)})}

    assert jobs == {
        "rotation": timedelta(hours=1),
        "review-reminders": timedelta(days=1),
        "audit": timedelta(days=1),
    }
