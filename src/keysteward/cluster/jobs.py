"""Background jobs that run once per interval across every server process.

Each job has a lease named ``job:<name>`` in the rotation lease table. A
process claims a run by taking the lease with a fresh owner id and a time to
live of one interval, and leaves it in place after the run. Other processes
cannot take it before it expires, so a job starts at most once per interval
whichever process runs it. The one exception is a run whose process dies
before finishing: another process on the same host takes the lease over at
once and starts the job again, and one on another host after the interval.
A finished run renames its owner with a ``finished:`` prefix, so the death
of that process afterwards does not let a second run start within the same
interval.

NOTE: the lease is not renewed while a job runs, so a run that lasts longer
than its interval can overlap the next one. Keep intervals above run times.

Every run records a ``cluster.job.run`` event with its outcome.
"""

import logging
import threading
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import update

from keysteward.clock import utcnow
from keysteward.db import Store
from keysteward.errors import InvalidInputError
from keysteward.events.services import record_event
from keysteward.rotation.locks import acquire_lease, new_owner_id
from keysteward.rotation.models import RotationLease

log = logging.getLogger(__name__)

JOB_ACTOR = "system:scheduler"
FINISHED_PREFIX = "finished:"
# The maximum wait between two claim attempts of one runner.
MAX_TICK_SECONDS = 5.0


@dataclass(frozen=True)
class Job:
    """A named task and its interval. ``run`` returns a short summary."""

    name: str
    interval: timedelta
    run: Callable[[Store], str]


def job_lease_name(name: str) -> str:
    return f"job:{name}"


def claim_run(
    store: Store, name: str, interval: timedelta
) -> tuple[str, datetime] | None:
    """Claim this interval's run of job ``name``, returning the owner id and time.

    Returns None when another process ran the job less than ``interval`` ago
    or is running it now. The returned time is the one the lease was taken
    at, so the claims of one job are at least ``interval`` apart.
    """
    owner = new_owner_id()
    moment = utcnow()
    if acquire_lease(store, job_lease_name(name), owner, ttl=interval, now=moment):
        return owner, moment
    return None


def mark_finished(store: Store, name: str, owner: str) -> None:
    """Rename ``owner``'s lease on job ``name`` so no takeover repeats its run."""
    with store.session() as session:
        session.execute(
            update(RotationLease)
            .where(
                RotationLease.name == job_lease_name(name),
                RotationLease.owner == owner,
            )
            .values(owner=FINISHED_PREFIX + owner)
        )


def run_job_once(store: Store, job: Job) -> bool:
    """Run ``job`` unless a process ran it within its interval. Return whether it ran.

    A run that raises is logged and recorded as a failure event, and the job
    is tried again after its interval.
    """
    claim = claim_run(store, job.name, job.interval)
    if claim is None:
        return False
    owner, started = claim
    log.info("job %s started (owner %s)", job.name, owner)
    try:
        summary = job.run(store)
    except Exception as exc:
        # Any error of a job is caught here: one failing job must not stop
        # the runner or the other jobs.
        log.exception("job %s failed, and runs again after its interval", job.name)
        _record_run(store, job, owner, started, "failure", type(exc).__name__)
        return True
    mark_finished(store, job.name, owner)
    _record_run(store, job, owner, started, "success", summary)
    log.info("job %s finished: %s", job.name, summary)
    return True


def _record_run(
    store: Store,
    job: Job,
    owner: str,
    started: datetime,
    outcome: str,
    summary: str,
) -> None:
    with store.session() as session:
        record_event(
            session,
            actor=JOB_ACTOR,
            action="cluster.job.run",
            target_type="job",
            target_id=job.name,
            outcome=outcome,
            details={
                "owner": owner,
                "started_at": started.isoformat(),
                "interval_seconds": job.interval.total_seconds(),
                "summary": summary,
            },
        )


class JobRunner:
    """A thread that offers each job a run whenever its lease may be free."""

    def __init__(self, store: Store, jobs: Iterable[Job]) -> None:
        self._store = store
        self.jobs = list(jobs)
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        shortest = min((job.interval.total_seconds() for job in self.jobs), default=1)
        self.tick_seconds = min(MAX_TICK_SECONDS, shortest / 4)

    def start(self) -> None:
        self._thread = threading.Thread(
            target=self._run, name="keysteward-job-runner", daemon=True
        )
        self._thread.start()
        log.info(
            "job runner started: %s",
            ", ".join(f"{job.name} every {job.interval}" for job in self.jobs),
        )

    def stop(self, timeout: float = 30.0) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout)

    def _run(self) -> None:
        while not self._stop.is_set():
            started = time.monotonic()
            for job in self.jobs:
                if self._stop.is_set():
                    break
                try:
                    run_job_once(self._store, job)
                except Exception:
                    # Claiming fails while the database is unreachable, and
                    # the next tick tries again.
                    log.exception("claiming a run of job %s failed", job.name)
            elapsed = time.monotonic() - started
            self._stop.wait(max(self.tick_seconds - elapsed, 0.0))
        log.info("job runner stopped")


def _run_rotations(store: Store) -> str:
    from keysteward.rotation.scheduler import run_due_rotations

    run = run_due_rotations(store)
    if run.skipped:
        return "skipped: a rotation pass was already running"
    return f"{len(run.results)} rotations"


def _send_review_reminders(store: Store) -> str:
    from keysteward.reviews.services import send_reminders

    with store.session() as session:
        sent = send_reminders(session, within_days=REMINDER_DAYS, actor=JOB_ACTOR)
    return f"{len(sent)} reminders"


def _run_audit(store: Store) -> str:
    from keysteward.audit.config import load_audit_config
    from keysteward.audit.engine import run_audit

    result = run_audit(
        store,
        as_of=utcnow(),
        config=load_audit_config(store.settings),
        actor=JOB_ACTOR,
    )
    return f"audit run {result.summary.run_id}"


# Reviewers are reminded of open items due within this many days.
REMINDER_DAYS = 3

DEFAULT_INTERVALS: dict[str, timedelta] = {
    "rotation": timedelta(hours=1),
    "review-reminders": timedelta(days=1),
    "audit": timedelta(days=1),
}
TASKS: dict[str, Callable[[Store], str]] = {
    "rotation": _run_rotations,
    "review-reminders": _send_review_reminders,
    "audit": _run_audit,
}


def parse_intervals(text: str) -> dict[str, timedelta]:
    """Parse ``NAME=SECONDS[,NAME=SECONDS...]`` into intervals per job.

    Raises InvalidInputError naming the entry when a name is unknown or the
    seconds are not a positive number.
    """
    intervals: dict[str, timedelta] = {}
    for entry in filter(None, (part.strip() for part in text.split(","))):
        name, _, seconds_text = entry.partition("=")
        name = name.strip()
        if name not in TASKS:
            raise InvalidInputError(
                f"invalid job interval {entry!r}: unknown job {name!r}; "
                f"use one of {', '.join(TASKS)}"
            )
        try:
            seconds = float(seconds_text)
        except ValueError:
            seconds = 0.0
        if seconds <= 0:
            raise InvalidInputError(
                f"invalid job interval {entry!r}: give NAME=SECONDS with "
                "SECONDS a positive number"
            )
        intervals[name] = timedelta(seconds=seconds)
    return intervals


def scheduled_jobs(intervals: dict[str, timedelta] | None = None) -> list[Job]:
    """Return every job, each with its interval from ``intervals`` or the default."""
    chosen = {**DEFAULT_INTERVALS, **(intervals or {})}
    return [Job(name, chosen[name], task) for name, task in TASKS.items()]
