"""Time the audit of 100,000 credentials on SQLite and on PostgreSQL.

    .venv/bin/python bench/audit_100k.py [--count 100000] [--no-write]

The inventory is generated with a fixed random seed and bulk-inserted
straight into a fresh store, then ``keysteward.audit.engine.run_audit`` is
timed twice per backend: the first run inserts every finding, the second
also supersedes the first run's findings. The figures go to the ``## Audit``
section of docs/benchmarks.md. PostgreSQL is the local server at
127.0.0.1:5432 (user postgres); a scratch database is created and dropped.
"""

import argparse
import os
import platform
import random
import re
import secrets
import sys
import tempfile
import time
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any

import psycopg
import sqlalchemy
from sqlalchemy import insert

import keysteward.models  # noqa: F401
from keysteward.audit.config import AuditConfig
from keysteward.audit.engine import run_audit
from keysteward.config import Settings
from keysteward.credentials.models import Credential
from keysteward.db import Store, open_store
from keysteward.identities.models import Person, ServiceAccount
from keysteward.systems.models import System

POSTGRES_ADMIN = "postgresql://postgres@127.0.0.1:5432/postgres"
AS_OF = datetime(2026, 12, 4, tzinfo=UTC)
SYSTEMS = (
    "aws",
    "gcp",
    "github",
    "openai",
    "anthropic",
    "slack",
    "google_workspace",
    "okta",
    "stripe",
    "hubspot",
    "legacy_ftp",
)
KINDS = ("api_key", "access_key", "personal_access_token", "oauth_token", "webhook_url")
PRIVILEGES = ("read", "write", "admin", "unknown")
BATCH = 10_000
DOCS = Path(__file__).resolve().parents[1] / "docs" / "benchmarks.md"


def generate(store: Store, count: int, seed: int = 7) -> None:
    """Insert people, service accounts, systems and ``count`` credentials."""
    rng = random.Random(seed)
    people_count = max(count // 200, 20)
    with store.session() as session:
        session.execute(
            insert(System),
            [
                {
                    "name": name,
                    "status": "decommissioned" if name == "legacy_ftp" else "active",
                }
                for name in SYSTEMS
            ],
        )
        session.execute(insert(Person), list(_people(people_count)))
        session.execute(
            insert(ServiceAccount),
            [
                {
                    "name": f"svc-{index}",
                    "owner_id": rng.randint(1, people_count),
                    "status": "disabled" if rng.random() < 0.03 else "active",
                }
                for index in range(people_count // 2)
            ],
        )
    accounts = people_count // 2
    for start in range(0, count, BATCH):
        rows = [
            _credential(rng, index, people_count, accounts)
            for index in range(start, min(start + BATCH, count))
        ]
        with store.session() as session:
            session.execute(insert(Credential), rows)


def _people(count: int) -> Any:
    for index in range(count):
        departed = index % 10 == 0
        yield {
            "name": f"Person {index}",
            "email": f"person{index}@example.com",
            "status": "departed" if departed else "active",
            "departed_on": date(2026, 6, 1) if departed else None,
        }


def _credential(
    rng: random.Random, index: int, people: int, accounts: int
) -> dict[str, Any]:
    created = AS_OF - timedelta(days=rng.randint(1, 1500))
    used = None if rng.random() < 0.1 else created + timedelta(days=rng.randint(0, 30))
    personal = rng.random() < 0.3
    attributes: dict[str, Any] = {"usage_known": rng.random() < 0.7}
    if rng.random() < 0.05:
        attributes["stored_in"] = rng.choice((".env", "sheet", "code"))
    if rng.random() < 0.02:
        attributes["endpoint"] = "http://hooks.example.com/in"
        attributes["embedded_secret"] = True
    if personal and rng.random() < 0.2:
        attributes["used_by"] = ["nightly-sync"]
    return {
        "name": f"credential-{index}",
        "kind": rng.choice(KINDS),
        "system_id": rng.randint(1, len(SYSTEMS)),
        "scopes": [] if rng.random() < 0.1 else ["read:all"],
        "privilege": rng.choice(PRIVILEGES),
        "owner_id": None if rng.random() < 0.04 else rng.randint(1, people),
        "created_by_id": rng.randint(1, people),
        "holder_person_id": rng.randint(1, people) if personal else None,
        "holder_service_account_id": None if personal else rng.randint(1, accounts),
        "created_at": created,
        "last_used_at": used,
        "expires_at": None,
        "status": "active" if rng.random() < 0.95 else "revoked",
        "source": "bench",
        "source_id": f"bench-{index}",
        # One in fifty shares its value with another credential.
        "fingerprint": f"{index % 1000:064x}" if index % 50 == 0 else None,
        "attributes": attributes,
    }


def time_backend(store: Store, count: int) -> dict[str, Any]:
    """Generate the inventory in ``store`` and time two audit runs."""
    started = time.perf_counter()
    generate(store, count)
    load_seconds = time.perf_counter() - started
    timings = []
    cpu_timings = []
    result = None
    for _ in range(2):
        started = time.perf_counter()
        cpu_started = time.process_time()
        result = run_audit(store, as_of=AS_OF, config=AuditConfig())
        timings.append(time.perf_counter() - started)
        cpu_timings.append(time.process_time() - cpu_started)
    assert result is not None
    return {
        "load": load_seconds,
        "first": timings[0],
        "second": timings[1],
        "first_cpu": cpu_timings[0],
        "second_cpu": cpu_timings[1],
        "evaluated": result.summary.credentials_evaluated,
        "findings": len(result.findings),
    }


def run_sqlite(count: int) -> dict[str, Any]:
    with tempfile.TemporaryDirectory() as folder:
        store = open_store(Settings(home=Path(folder)))
        try:
            return time_backend(store, count)
        finally:
            store.engine.dispose()


def run_postgres(count: int) -> dict[str, Any]:
    name = f"keysteward_bench_{os.getpid()}_{secrets.token_hex(3)}"
    with psycopg.connect(POSTGRES_ADMIN, autocommit=True) as admin:
        admin.execute(f'CREATE DATABASE "{name}"')
    url = f"postgresql+psycopg://postgres@127.0.0.1:5432/{name}"
    try:
        with tempfile.TemporaryDirectory() as folder:
            store = open_store(Settings(home=Path(folder), database_url=url))
            try:
                return time_backend(store, count)
            finally:
                store.engine.dispose()
    finally:
        with psycopg.connect(POSTGRES_ADMIN, autocommit=True) as admin:
            admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def machine() -> str:
    cpu = "unknown CPU"
    for line in Path("/proc/cpuinfo").read_text().splitlines():
        if line.startswith("model name"):
            cpu = line.split(":", 1)[1].strip()
            break
    memory_kb = 0
    for line in Path("/proc/meminfo").read_text().splitlines():
        if line.startswith("MemTotal"):
            memory_kb = int(line.split()[1])
    return (
        f"{os.cpu_count()} cores ({cpu}), {memory_kb / 1024 / 1024:.0f} GiB RAM, "
        f"Python {platform.python_version()}, SQLAlchemy {sqlalchemy.__version__}"
    )


def section(
    count: int,
    results: dict[str, dict[str, Any]],
    postgres: str,
    load: tuple[float, float],
) -> str:
    lines = [
        "## Audit",
        "",
        f"`.venv/bin/python bench/audit_100k.py --count {count}`: {count:,} generated",
        "credentials (about 5% revoked) with people, service accounts and systems,",
        "bulk-inserted into a fresh store, then `run_audit` timed twice. The first",
        "run inserts every finding; the second also marks the first run's findings",
        "superseded.",
        "",
        f"Machine: {machine()}, {postgres}. Load average (1 min) before and",
        f"after the run: {load[0]:.2f} and {load[1]:.2f}. Other jobs shared the",
        "machine whenever it was above 2, which stretches every figure.",
        "",
        "Each audit shows wall-clock seconds and, in brackets, the CPU seconds of",
        "the benchmark process, which other jobs do not stretch. On SQLite that",
        "CPU time includes the database work; on PostgreSQL the server's share",
        "is not in it.",
        "",
        "| backend | bulk load (s) | first audit (s) | second audit (s) "
        "| credentials evaluated | findings |",
        "| --- | --- | --- | --- | --- | --- |",
    ]
    for backend, figures in results.items():
        lines.append(
            f"| {backend} | {figures['load']:.1f} "
            f"| {figures['first']:.1f} ({figures['first_cpu']:.1f}) "
            f"| {figures['second']:.1f} ({figures['second_cpu']:.1f}) "
            f"| {figures['evaluated']:,} "
            f"| {figures['findings']:,} |"
        )
    return "\n".join(lines) + "\n"


def write_section(text: str) -> None:
    """Replace the ``## Audit`` section of the benchmarks page, or append it."""
    page = DOCS.read_text(encoding="utf-8") if DOCS.exists() else "# Benchmarks\n"
    pattern = re.compile(r"^## Audit\n.*?(?=^## |\Z)", re.DOTALL | re.MULTILINE)
    if pattern.search(page):
        page = pattern.sub(text + "\n", page).rstrip("\n") + "\n"
    else:
        page = page.rstrip("\n") + "\n\n" + text
    DOCS.write_text(page, encoding="utf-8")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--count", type=int, default=100_000)
    parser.add_argument("--no-write", action="store_true")
    args = parser.parse_args()

    load_before = os.getloadavg()[0]
    results = {"SQLite": run_sqlite(args.count), "PostgreSQL": run_postgres(args.count)}
    load_after = os.getloadavg()[0]
    with psycopg.connect(POSTGRES_ADMIN) as connection:
        version = connection.execute("SHOW server_version").fetchone()
    postgres = f"PostgreSQL {version[0] if version else 'unknown'} on 127.0.0.1"
    text = section(args.count, results, postgres, (load_before, load_after))
    print(text)
    if not args.no_write:
        write_section(text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
