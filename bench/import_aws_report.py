"""Time importing a 10,000-user AWS IAM credential report, cold and again.

Generates a report in which 70% of the users are svc-* users with one or two
keys and 30% are people with a console password and sometimes a key. Imports
it into an empty store, then imports the same file again, on SQLite and on
the local PostgreSQL server.
Writes the figures into docs/benchmarks.md under "## Import".

    .venv/bin/python bench/import_aws_report.py [--users 10000]
"""

import argparse
import csv
import os
import platform
import random
import re
import secrets
import subprocess
import sys
import tempfile
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

import psycopg
import sqlalchemy

from keysteward.config import Settings
from keysteward.db import open_store
from keysteward.inventory.services import run_import

ROOT = Path(__file__).resolve().parents[1]
DOCS = ROOT / "docs" / "benchmarks.md"
POSTGRES_ADMIN = "postgresql://postgres@127.0.0.1:5432/postgres"
COLUMNS = [
    "user",
    "arn",
    "user_creation_time",
    "password_enabled",
    "password_last_used",
    "password_last_changed",
    "password_next_rotation",
    "mfa_active",
    "access_key_1_active",
    "access_key_1_last_rotated",
    "access_key_1_last_used_date",
    "access_key_1_last_used_region",
    "access_key_1_last_used_service",
    "access_key_2_active",
    "access_key_2_last_rotated",
    "access_key_2_last_used_date",
    "access_key_2_last_used_region",
    "access_key_2_last_used_service",
    "cert_1_active",
    "cert_1_last_rotated",
    "cert_2_active",
    "cert_2_last_rotated",
]
NOW = datetime(2026, 12, 4, tzinfo=UTC)


def stamp(days: int) -> str:
    return (NOW - timedelta(days=days)).strftime("%Y-%m-%dT%H:%M:%S+00:00")


def key(rng: random.Random) -> list[str]:
    return [
        "true",
        stamp(rng.randint(1, 400)),
        stamp(rng.randint(0, 30)),
        "eu-west-1",
        "s3",
    ]


def write_report(path: Path, users: int) -> int:
    """Write a report of ``users`` users; return how many credentials it lists."""
    rng = random.Random(7)
    none_key = ["false", "N/A", "N/A", "N/A", "N/A"]
    credentials = 0
    with path.open("w", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(COLUMNS)
        for number in range(users):
            service = number % 10 < 7
            name = f"svc-bench-{number:05d}" if service else f"person.{number:05d}"
            password = ["false", "N/A", "N/A", "N/A"]
            if not service:
                password = ["true", stamp(rng.randint(0, 20)), stamp(40), "N/A"]
                credentials += 1
            first = key(rng) if service or number % 3 == 0 else none_key
            second = key(rng) if service and number % 2 == 0 else none_key
            credentials += (first is not none_key) + (second is not none_key)
            writer.writerow(
                [
                    name,
                    f"arn:aws:iam::123456789012:user/{name}",
                    stamp(500),
                    *password,
                    "true",
                    *first,
                    *second,
                    "false",
                    "N/A",
                    "false",
                    "N/A",
                ]
            )
    return credentials


def time_imports(settings: Settings, report: Path) -> tuple[float, float, int]:
    store = open_store(settings)
    try:
        started = time.perf_counter()
        first = run_import(store, [report])
        cold = time.perf_counter() - started
        started = time.perf_counter()
        second = run_import(store, [report])
        again = time.perf_counter() - started
        assert second.counts()["added"] == 0, second.counts()
        assert second.counts()["changed"] == 0, second.counts()
        return cold, again, first.counts()["added"]
    finally:
        store.engine.dispose()


def postgres_settings(home: Path) -> tuple[Settings, str]:
    name = f"keysteward_bench_{secrets.token_hex(4)}"
    with psycopg.connect(POSTGRES_ADMIN, autocommit=True) as admin:
        admin.execute(f'CREATE DATABASE "{name}"')
    url = f"postgresql+psycopg://postgres@127.0.0.1:5432/{name}"
    return Settings(home=home, database_url=url), name


def drop_database(name: str) -> None:
    with psycopg.connect(POSTGRES_ADMIN, autocommit=True) as admin:
        admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def machine() -> str:
    cpu = "unknown CPU"
    for line in Path("/proc/cpuinfo").read_text().splitlines():
        if line.startswith("model name"):
            cpu = line.split(":", 1)[1].strip()
            break
    memory = "unknown"
    for line in Path("/proc/meminfo").read_text().splitlines():
        if line.startswith("MemTotal"):
            memory = f"{int(line.split()[1]) // 1024 // 1024} GiB"
    return f"{os.cpu_count()} CPUs ({cpu}), {memory} RAM"


def postgres_version() -> str:
    with psycopg.connect(POSTGRES_ADMIN) as connection:
        row = connection.execute("SHOW server_version").fetchone()
    return row[0] if row else "unknown"


def write_section(text: str) -> None:
    """Replace (or append) the ``## Import`` section of docs/benchmarks.md."""
    current = DOCS.read_text() if DOCS.exists() else "# Benchmarks\n"
    pattern = re.compile(r"^## Import\n.*?(?=^## |\Z)", re.S | re.M)
    if pattern.search(current):
        updated = pattern.sub(lambda _: text, current)
    else:
        updated = current.rstrip("\n") + "\n\n" + text
    DOCS.write_text(updated)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--users", type=int, default=10_000, help="IAM users in the report"
    )
    args = parser.parse_args()
    load_before = os.getloadavg()[0]
    with tempfile.TemporaryDirectory() as scratch:
        folder = Path(scratch)
        report = folder / "credential_report.csv"
        listed = write_report(report, args.users)
        results = {}
        results["SQLite"] = time_imports(Settings(home=folder / "sqlite"), report)
        settings, database = postgres_settings(folder / "pg")
        try:
            results["PostgreSQL"] = time_imports(settings, report)
        finally:
            drop_database(database)
    commit = subprocess.run(
        ["git", "rev-parse", "--short", "HEAD"],
        capture_output=True,
        text=True,
        cwd=ROOT,
    ).stdout.strip()
    rows = "\n".join(
        f"| {backend} | {added:,} | {cold:.1f} s | {again:.1f} s |"
        for backend, (cold, again, added) in results.items()
    )
    section = f"""## Import

Importing one AWS IAM credential report of {args.users:,} users ({listed:,}
credentials: access keys and console passwords; 30% of the users are people,
who become placeholder person rows) into an empty store, then importing the
same file again (which must report 0 added, 0 changed).

| Backend | Credentials added | Cold import | Re-import |
|---|---|---|---|
{rows}

- Command: `.venv/bin/python bench/import_aws_report.py --users {args.users}`
- keysteward at {commit}; Python {platform.python_version()}, SQLAlchemy
  {sqlalchemy.__version__}, PostgreSQL {postgres_version()} on 127.0.0.1, SQLite
  {__import__("sqlite3").sqlite_version}
- Machine: {machine()}
- Load average when the run started: {load_before:.1f} (other processes
  shared the machine).
- One run each; read the numbers as ratios, not as absolute figures.

"""
    write_section(section)
    print(section)


if __name__ == "__main__":
    sys.exit(main())
