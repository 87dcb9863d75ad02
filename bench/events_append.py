"""Measure event appends per second on SQLite and PostgreSQL.

Five ways of writing, each into a fresh store:

- plain: a Core INSERT of an event-shaped row into a table with no chain,
  no lock and no ORM, one row per transaction. This is the floor.
- unlocked: like single, but the chain head is read without being locked
  (safe with one writer only), to isolate the cost of the lock.
- single: ``record_event`` with one event per transaction, so every event
  takes the chain head lock and commits on its own.
- batched: ``record_events`` with ``--batch`` events per transaction.
- concurrent: ``--processes`` processes doing ``single`` at the same time,
  which shows what serializing appends on the head lock costs.

Run from the repository root with the project's virtual environment:

    .venv/bin/python bench/events_append.py --events 2000 --write-docs

``--write-docs`` replaces the "## Event log" section of docs/benchmarks.md.
The PostgreSQL runs create a scratch database on the server named by
``--postgres-url`` and drop it afterwards.
"""

import argparse
import multiprocessing
import platform
import re
import secrets
import statistics
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager, contextmanager
from datetime import UTC, datetime
from pathlib import Path

import psycopg
import sqlalchemy
from alembic import command
from sqlalchemy import (
    JSON,
    Column,
    Connection,
    DateTime,
    Integer,
    MetaData,
    String,
    Table,
    insert,
    select,
)
from sqlalchemy.engine import make_url

from keysteward.config import Settings
from keysteward.db import Store, alembic_config, open_store
from keysteward.events import chain
from keysteward.events.models import EventChainHead
from keysteward.events.services import record_event, record_events

DOCS_PATH = Path(__file__).resolve().parents[1] / "docs" / "benchmarks.md"
SECTION_TITLE = "## Event log"

_plain_metadata = MetaData()
plain_events = Table(
    "bench_plain_events",
    _plain_metadata,
    Column("id", Integer, primary_key=True),
    Column("occurred_at", DateTime(timezone=True)),
    Column("actor", String(200)),
    Column("action", String(100)),
    Column("outcome", String(20)),
    Column("details", JSON),
)


def _open_events_store(settings: Settings) -> Store:
    # Only the foundation and the event log branch are migrated, so the
    # figures do not depend on other concepts' schema.
    settings.home.mkdir(parents=True, exist_ok=True)
    store = open_store(settings, migrate=False)
    command.upgrade(alembic_config(store.engine), "events@head")
    return store


@contextmanager
def sqlite_store() -> Iterator[Store]:
    with tempfile.TemporaryDirectory() as folder:
        store = _open_events_store(Settings(home=Path(folder) / "home"))
        try:
            yield store
        finally:
            store.engine.dispose()


@contextmanager
def postgres_store(admin_url: str) -> Iterator[Store]:
    name = f"keysteward_bench_{secrets.token_hex(4)}"
    admin_dsn = make_url(admin_url).set(drivername="postgresql")
    dsn = admin_dsn.render_as_string(hide_password=False)
    with psycopg.connect(dsn, autocommit=True) as admin:
        admin.execute(f'CREATE DATABASE "{name}"')
    url = make_url(admin_url).set(database=name).render_as_string(hide_password=False)
    try:
        with tempfile.TemporaryDirectory() as folder:
            store = _open_events_store(Settings(home=Path(folder), database_url=url))
            try:
                yield store
            finally:
                store.engine.dispose()
    finally:
        with psycopg.connect(dsn, autocommit=True) as admin:
            admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def append_plain(store: Store, count: int) -> None:
    _plain_metadata.create_all(store.engine)
    for number in range(count):
        with store.engine.begin() as connection:
            connection.execute(
                insert(plain_events).values(
                    occurred_at=datetime.now(UTC),
                    actor="bench",
                    action=f"plain.{number}",
                    outcome="success",
                    details={"n": number},
                )
            )


def append_single(store: Store, count: int, actor: str = "bench") -> None:
    for number in range(count):
        with store.session() as session:
            record_event(
                session, actor=actor, action=f"single.{number}", details={"n": number}
            )


def append_batched(store: Store, count: int, batch: int) -> None:
    for start in range(0, count, batch):
        entries = [
            {"actor": "bench", "action": f"batch.{n}", "details": {"n": n}}
            for n in range(start, min(start + batch, count))
        ]
        with store.session() as session:
            record_events(session, entries)


def _concurrent_worker(
    url: str,
    home: str,
    count: int,
    name: str,
    barrier: "multiprocessing.synchronize.Barrier",
    timings: "multiprocessing.Queue[tuple[float, float]]",
) -> None:
    store = open_store(Settings(home=Path(home), database_url=url), migrate=False)
    try:
        barrier.wait()
        # CLOCK_MONOTONIC is system-wide on Linux, so the parent can compare
        # the workers' timestamps.
        started = time.monotonic()
        append_single(store, count, actor=name)
        timings.put((started, time.monotonic()))
    finally:
        store.engine.dispose()


def append_concurrent(store: Store, count: int, processes: int) -> float:
    """Append from ``processes`` processes at once; return the seconds it took.

    The time runs from the first worker's start to the last one's end, so
    process start-up and imports are not counted.
    """
    per_process = count // processes
    context = multiprocessing.get_context("spawn")
    barrier = context.Barrier(processes)
    timings = context.Queue()
    workers = [
        context.Process(
            target=_concurrent_worker,
            args=(
                store.settings.resolved_database_url,
                str(store.settings.home),
                per_process,
                f"writer-{index}",
                barrier,
                timings,
            ),
        )
        for index in range(processes)
    ]
    for worker in workers:
        worker.start()
    spans = [timings.get(timeout=600) for _ in workers]
    for worker in workers:
        worker.join()
        if worker.exitcode != 0:
            raise RuntimeError(
                f"writer process failed with exit code {worker.exitcode}"
            )
    return max(end for _start, end in spans) - min(start for start, _end in spans)


def append_single_unlocked(store: Store, count: int) -> None:
    """Run ``append_single`` with the head read but not locked.

    Safe only with one writer. The difference to ``single`` is the cost of
    the lock itself when no other writer contends for it.
    """
    original = chain.lock_chain_head

    def read_head(connection: Connection) -> tuple[int, str]:
        row = connection.execute(
            select(EventChainHead.last_sequence, EventChainHead.last_digest)
        ).one()
        return int(row.last_sequence), str(row.last_digest)

    chain.lock_chain_head = read_head
    try:
        append_single(store, count)
    finally:
        chain.lock_chain_head = original


def timed(run: Callable[[], None]) -> float:
    started = time.perf_counter()
    run()
    return time.perf_counter() - started


def measure(
    open_backend: Callable[[], AbstractContextManager[Store]],
    count: int,
    batch: int,
    processes: int,
    repeat: int,
) -> dict[str, float]:
    """Return the median events per second of ``repeat`` runs of each way."""
    runs: dict[str, Callable[[Store], float]] = {
        "plain": lambda store: timed(lambda: append_plain(store, count)),
        "unlocked": lambda store: timed(lambda: append_single_unlocked(store, count)),
        "single": lambda store: timed(lambda: append_single(store, count)),
        "batched": lambda store: timed(lambda: append_batched(store, count, batch)),
        "concurrent": lambda store: append_concurrent(store, count, processes),
    }
    rates = {}
    written = {label: count for label in runs}
    written["concurrent"] = count // processes * processes
    for label, run in runs.items():
        samples = []
        for _ in range(repeat):
            with open_backend() as store:
                samples.append(written[label] / run(store))
                _check_chain(store, label)
        rates[label] = statistics.median(samples)
        print(f"  {label}: {rates[label]:.0f} events/s", file=sys.stderr)
    return rates


def _check_chain(store: Store, label: str) -> None:
    if label == "plain":
        return
    from keysteward.events.verify import verify_chain

    with store.session() as session:
        report = verify_chain(session)
    if not report.valid:
        raise RuntimeError(f"{label} run left an invalid chain: {report.problems[0]}")


def machine_description() -> str:
    cpu = "unknown CPU"
    for line in Path("/proc/cpuinfo").read_text().splitlines():
        if line.startswith("model name"):
            cpu = line.split(":", 1)[1].strip()
            break
    memory_kib = 0
    for line in Path("/proc/meminfo").read_text().splitlines():
        if line.startswith("MemTotal:"):
            memory_kib = int(line.split()[1])
    cores = multiprocessing.cpu_count()
    return (
        f"{cores} cores ({cpu}), {memory_kib / 1024 / 1024:.0f} GiB RAM, "
        f"Python {platform.python_version()}, SQLAlchemy {sqlalchemy.__version__}"
    )


def load_average() -> str:
    return Path("/proc/loadavg").read_text().split()[0]


def render_section(
    results: dict[str, dict[str, float]], args: argparse.Namespace, server: str
) -> str:
    lines = [
        SECTION_TITLE,
        "",
        "Command: `.venv/bin/python bench/events_append.py "
        f"--events {args.events} --batch {args.batch} --processes {args.processes} "
        f"--repeat {args.repeat}" + (" --write-docs`" if args.write_docs else "`"),
        "",
        f"Machine: {machine_description()}; {server}. Load average (1 min) "
        f"before and after the run: {args.load_before} and {load_average()}; "
        "other jobs shared the machine when it was higher than 1, which makes "
        "single figures vary by tens of percent between runs.",
        "",
        f"Events per second, the median of {args.repeat} runs, each run into a "
        "fresh store.",
        "",
        "- *plain*: a Core INSERT of an event-shaped row into a table with no "
        "chain, one commit per row (the floor).",
        "- *unlocked*: `record_event`, one commit per event, with the chain head "
        "read but not locked (one writer only; the lock's uncontended cost is "
        "*unlocked* minus *single*).",
        "- *single*: `record_event`, one commit per event.",
        f"- *batched*: `record_events` with {args.batch} events per commit.",
        f"- *concurrent*: {args.processes} processes doing *single* at once, "
        "timed from the first start to the last finish.",
        "",
        "| Backend | plain | unlocked | single | batched | concurrent |",
        "|---|---|---|---|---|---|",
    ]
    for backend, rates in results.items():
        lines.append(
            f"| {backend} | {rates['plain']:.0f} | {rates['unlocked']:.0f} | "
            f"{rates['single']:.0f} | {rates['batched']:.0f} | "
            f"{rates['concurrent']:.0f} |"
        )
    lines += ["", "Ratios from the same run:", ""]
    for backend, rates in results.items():
        lines.append(
            f"- {backend}: *single* / *unlocked* = "
            f"{rates['single'] / rates['unlocked']:.2f} (the uncontended cost "
            "of the head lock; a value near 1 means it is within the noise); "
            f"*unlocked* / *plain* = {rates['unlocked'] / rates['plain']:.2f} "
            "(hashing and the ORM); *batched* / *single* = "
            f"{rates['batched'] / rates['single']:.0f}; {args.processes} writers "
            f"together reach {rates['concurrent'] / rates['single']:.2f}x one "
            "writer, because appends are serialized on the head lock and only "
            "the work outside it runs in parallel."
        )
    return "\n".join(lines) + "\n"


def write_docs(section: str) -> None:
    text = DOCS_PATH.read_text() if DOCS_PATH.exists() else "# Benchmarks\n"
    pattern = re.compile(r"^## Event log\n.*?(?=^## |\Z)", re.S | re.M)
    if pattern.search(text):
        text = pattern.sub(section + "\n", text)
    else:
        text = text.rstrip("\n") + "\n\n" + section
    DOCS_PATH.write_text(text.rstrip("\n") + "\n")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--events", type=int, default=2000, help="events per run")
    parser.add_argument("--batch", type=int, default=100, help="events per batch")
    parser.add_argument("--processes", type=int, default=4, help="concurrent writers")
    parser.add_argument(
        "--repeat", type=int, default=3, help="runs per figure; the median is kept"
    )
    parser.add_argument(
        "--postgres-url",
        default="postgresql+psycopg://postgres@127.0.0.1:5432/postgres",
        help="admin URL of the PostgreSQL server for the scratch database",
    )
    parser.add_argument(
        "--write-docs", action="store_true", help="update docs/benchmarks.md"
    )
    args = parser.parse_args()
    args.load_before = load_average()

    results = {}
    print("SQLite:", file=sys.stderr)
    results["SQLite (WAL)"] = measure(
        sqlite_store, args.events, args.batch, args.processes, args.repeat
    )
    print("PostgreSQL:", file=sys.stderr)
    results["PostgreSQL"] = measure(
        lambda: postgres_store(args.postgres_url),
        args.events,
        args.batch,
        args.processes,
        args.repeat,
    )
    with psycopg.connect(
        make_url(args.postgres_url)
        .set(drivername="postgresql")
        .render_as_string(hide_password=False)
    ) as connection:
        version_row = connection.execute("SHOW server_version").fetchone()
    server = f"PostgreSQL {version_row[0] if version_row else '?'} on 127.0.0.1"
    section = render_section(results, args, server)
    print(section)
    if args.write_docs:
        write_docs(section)


if __name__ == "__main__":
    main()
