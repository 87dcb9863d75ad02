"""Time one reviewer's 200-item access review, from snapshot to applied decisions.

A fresh store gets one reviewer who owns 120 credentials, 40 service
accounts with API tokens, and 40 role assignments of those accounts. A
third of the credentials have an open revoke finding and a third a rotate
finding. Half the assignments have partial recorded usage, so "reduce",
and half have none, so "revoke". The script
then times ``start_campaign``, rendering the reviewer's ``review items``
table, and ``accept_recommended`` over all 200 items in one transaction,
as ``keysteward review accept-recommended`` runs it.

``--database-url`` points it at PostgreSQL (a scratch database is created
and dropped); ``--write-docs`` replaces the "## Access reviews" section of
docs/benchmarks.md with the figures.
"""

import argparse
import io
import os
import platform
import re
import secrets
import sys
import tempfile
import time
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from importlib import metadata
from pathlib import Path
from typing import Any

import psycopg
from rich.console import Console
from rich.table import Table
from sqlalchemy.engine import make_url

from keysteward.authz.models import Permission, Role, RoleGrant
from keysteward.authz.usage import UsageRecord, record_usage
from keysteward.cli.reviews import item_row
from keysteward.config import Settings
from keysteward.credentials.models import Credential, Privilege
from keysteward.db import Store, open_store
from keysteward.findings.models import Finding
from keysteward.identities.models import Person, ServiceAccount
from keysteward.reviews.services import accept_recommended, list_items, start_campaign
from keysteward.systems.models import System
from keysteward.tokens.principals import Principal, PrincipalType
from keysteward.tokens.services import issue_api_token

REVIEWER = "reviewer@example.com"
DOCS = Path(__file__).resolve().parents[1] / "docs" / "benchmarks.md"
SECTION = "## Access reviews"


def build(store: Store) -> None:
    now = datetime.now(UTC)
    with store.session() as session:
        reviewer = Person(name="Rita Reviewer", email=REVIEWER)
        system = System(name="crm", owner=reviewer)
        session.add_all([reviewer, system])
        session.flush()
        for index in range(120):
            credential = Credential(
                name=f"key-{index:03d}",
                system=system,
                owner=reviewer,
                privilege=Privilege.WRITE,
                source="bench",
                source_id=f"key-{index:03d}",
            )
            session.add(credential)
            session.flush()
            rule = ("unused", "rotation_overdue", None)[index % 3]
            if rule is not None:
                session.add(
                    Finding(
                        credential_id=credential.id,
                        rule=rule,
                        severity="high",
                        title=rule,
                        recommendation="-",
                    )
                )
        usage = []
        for index in range(40):
            account = ServiceAccount(
                name=f"bot-{index:02d}", owner=reviewer, purpose="benchmark"
            )
            role = Role(name=f"bot-{index:02d}-role")
            for action in ("read", "write"):
                role.permissions.append(
                    Permission(system="crm", resource=f"r{index}/*", action=action)
                )
            session.add_all([account, role])
            session.flush()
            session.add(
                RoleGrant(
                    role_id=role.id,
                    principal_type=PrincipalType.SERVICE_ACCOUNT,
                    principal_id=account.id,
                )
            )
            principal = Principal(
                PrincipalType.SERVICE_ACCOUNT, account.id, account.name
            )
            issue_api_token(session, principal, actor="bench")
            if index % 2 == 0:
                usage.append(
                    UsageRecord(
                        f"service_account:{account.name}",
                        f"crm:r{index}/1:read",
                        True,
                        now - timedelta(days=1),
                    )
                )
        record_usage(session, usage)


def timed(action: Callable[[], Any]) -> tuple[float, Any]:
    started = time.perf_counter()
    result = action()
    return time.perf_counter() - started, result


def render_items(store: Store) -> int:
    with store.session() as session:
        rows = [item_row(item) for item in list_items(session, reviewer=REVIEWER)]
    table = Table("id", "type", "subject", "last used", "recommended", "why")
    for row in rows:
        table.add_row(
            str(row["id"]),
            row["type"],
            row["subject"],
            row["last_used_at"] or "never",
            row["recommendation"],
            row["reason"],
        )
    Console(file=io.StringIO(), width=160).print(table)
    return len(rows)


def run(settings: Settings) -> dict[str, Any]:
    store = open_store(settings)
    try:
        load_seconds, _ = timed(lambda: build(store))

        def start() -> int:
            with store.session() as session:
                campaign = start_campaign(session, actor="bench", name="bench")
                return len(campaign.items)

        start_seconds, items = timed(start)
        list_seconds, listed = timed(lambda: render_items(store))

        def accept() -> dict[str, int]:
            with store.session() as session:
                return dict(
                    accept_recommended(session, actor="bench", reviewer=REVIEWER)
                )

        accept_seconds, decisions = timed(accept)
    finally:
        store.engine.dispose()
    return {
        "load": load_seconds,
        "items": items,
        "listed": listed,
        "start": start_seconds,
        "list": list_seconds,
        "accept": accept_seconds,
        "decisions": decisions,
    }


def postgres_settings(url: str, home: Path) -> tuple[Settings, Callable[[], None]]:
    name = f"keysteward_bench_{secrets.token_hex(4)}"
    admin = make_url(url).set(drivername="postgresql").render_as_string(False)
    with psycopg.connect(admin, autocommit=True) as connection:
        connection.execute(f'CREATE DATABASE "{name}"')

    def drop() -> None:
        with psycopg.connect(admin, autocommit=True) as connection:
            connection.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')

    database = make_url(url).set(database=name).render_as_string(False)
    return Settings(home=home, database_url=database), drop


def machine() -> str:
    cpu = "unknown CPU"
    for line in Path("/proc/cpuinfo").read_text().splitlines():
        if line.startswith("model name"):
            cpu = line.split(":", 1)[1].strip()
            break
    memory_kib = 0
    for line in Path("/proc/meminfo").read_text().splitlines():
        if line.startswith("MemTotal:"):
            memory_kib = int(line.split()[1])
    return (
        f"{os.cpu_count()} cores ({cpu}), {memory_kib / 1024 / 1024:.0f} GiB RAM, "
        f"Python {platform.python_version()}, "
        f"SQLAlchemy {metadata.version('sqlalchemy')}"
    )


def write_docs(command: str, results: dict[str, dict[str, Any]]) -> None:
    lines = [
        SECTION,
        "",
        f"Command: `{command}`",
        "",
        f"Machine: {machine()}. Load average (1 min) at the end: "
        f"{os.getloadavg()[0]:.2f} on {os.cpu_count()} cores, so other jobs "
        "shared the machine when it is above the core count.",
        "",
        "One reviewer with 200 items (120 credentials, 40 service accounts, 40 "
        "role assignments), each step timed once in a fresh store. *accept* "
        "applies all 200 recommendations in one transaction, including the "
        "policy changes for reduce and revoke on role assignments.",
        "",
        "| backend | start campaign (s) | items table (s) | accept 200 (s) "
        "| decisions |",
        "| --- | --- | --- | --- | --- |",
    ]
    for backend, figures in results.items():
        decisions = ", ".join(
            f"{count} {name}" for name, count in sorted(figures["decisions"].items())
        )
        lines.append(
            f"| {backend} | {figures['start']:.2f} | {figures['list']:.2f} | "
            f"{figures['accept']:.2f} | {decisions} |"
        )
    section = "\n".join(lines) + "\n"
    text = DOCS.read_text(encoding="utf-8") if DOCS.exists() else "# Benchmarks\n"
    pattern = re.compile(rf"^{re.escape(SECTION)}\n.*?(?=^## |\Z)", re.S | re.M)
    if pattern.search(text):
        text = pattern.sub(section + "\n", text)
    else:
        text = text.rstrip("\n") + "\n\n" + section
    DOCS.write_text(text, encoding="utf-8")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--database-url", help="PostgreSQL server to test as well")
    parser.add_argument("--write-docs", action="store_true")
    options = parser.parse_args()
    results: dict[str, dict[str, Any]] = {}
    with tempfile.TemporaryDirectory() as scratch:
        results["SQLite"] = run(Settings(home=Path(scratch) / "sqlite"))
        if options.database_url:
            settings, drop = postgres_settings(
                options.database_url, Path(scratch) / "pg"
            )
            try:
                results["PostgreSQL"] = run(settings)
            finally:
                drop()
    for backend, figures in results.items():
        print(backend, {k: v for k, v in figures.items()})
    if options.write_docs:
        write_docs(
            ".venv/bin/python bench/reviews_200.py " + " ".join(sys.argv[1:]), results
        )


if __name__ == "__main__":
    main()
