"""Shared fixtures: a migrated store on SQLite and on a real PostgreSQL server.

Every test that takes ``store`` runs twice, once per backend. The PostgreSQL
run uses a database created for this test session and dropped after it, on
the server named by KEYSTEWARD_TEST_POSTGRES_URL (default: the local server).
"""

import base64
import json
import os
import re
import secrets
from collections.abc import Iterator
from pathlib import Path

import psycopg
import pytest
from sqlalchemy import text
from sqlalchemy.engine import make_url

import keysteward.models  # noqa: F401
from keysteward.config import Settings
from keysteward.db import Base, Store, open_store
from keysteward.events.checkpoint_record import RECORD_FILE_NAME

POSTGRES_ADMIN_URL = os.environ.get(
    "KEYSTEWARD_TEST_POSTGRES_URL",
    "postgresql+psycopg://postgres@127.0.0.1:5432/postgres",
)
SHARED_DIR = Path(__file__).resolve().parents[2] / "shared"


def _psycopg_dsn(url: str) -> str:
    return (
        make_url(url).set(drivername="postgresql").render_as_string(hide_password=False)
    )


@pytest.fixture(scope="session")
def postgres_url() -> Iterator[str]:
    """Create a fresh PostgreSQL database for this test session; drop it after."""
    name = f"keysteward_test_{os.getpid()}_{secrets.token_hex(4)}"
    admin_dsn = _psycopg_dsn(POSTGRES_ADMIN_URL)
    try:
        admin = psycopg.connect(admin_dsn, autocommit=True)
    except psycopg.OperationalError as exc:
        pytest.fail(
            f"PostgreSQL at {make_url(POSTGRES_ADMIN_URL).render_as_string()} is not "
            f"reachable ({exc}); start it or set KEYSTEWARD_TEST_POSTGRES_URL"
        )
    with admin:
        admin.execute(f'CREATE DATABASE "{name}"')
    try:
        yield (
            make_url(POSTGRES_ADMIN_URL)
            .set(database=name)
            .render_as_string(hide_password=False)
        )
    finally:
        with psycopg.connect(admin_dsn, autocommit=True) as admin:
            admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


@pytest.fixture(scope="session")
def postgres_store(
    postgres_url: str, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Store]:
    home = tmp_path_factory.mktemp("pg-home")
    opened = open_store(Settings(home=home, database_url=postgres_url))
    yield opened
    opened.engine.dispose()


def _empty_postgres(store: Store) -> None:
    tables = ", ".join(f'"{table.name}"' for table in Base.metadata.sorted_tables)
    with store.engine.begin() as connection:
        connection.execute(text(f"TRUNCATE {tables} RESTART IDENTITY CASCADE"))
    # The recorded checkpoint names an event of the chain just removed.
    (store.settings.home / RECORD_FILE_NAME).unlink(missing_ok=True)


@pytest.fixture(params=["sqlite", "postgresql"])
def store(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Store]:
    """A migrated, empty store on each backend in turn."""
    if request.param == "sqlite":
        sqlite_store = open_store(Settings(home=tmp_path / "home"))
        yield sqlite_store
        sqlite_store.engine.dispose()
        return
    pg_store: Store = request.getfixturevalue("postgres_store")
    _empty_postgres(pg_store)
    yield pg_store


@pytest.fixture
def sqlite_store(tmp_path: Path) -> Iterator[Store]:
    """A migrated, empty SQLite store, for tests that need only one backend."""
    created = open_store(Settings(home=tmp_path / "home"))
    yield created
    created.engine.dispose()


@pytest.fixture
def shared_dir() -> Path:
    """The shared folder of sample exports and cases beside the checkout."""
    if not SHARED_DIR.is_dir():
        pytest.fail(f"shared sample folder not found at {SHARED_DIR}")
    return SHARED_DIR


# Issued tokens must never reach a log or the console. After each test, the
# stdout, stderr and log text captured in all its phases are searched for
# keysteward API tokens (valid checksum) and for JWTs that keysteward issued.
_JWT_SHAPE = re.compile(r"eyJ[A-Za-z0-9_-]+\.eyJ[A-Za-z0-9_-]+\.[A-Za-z0-9_-]+")


def _leaked_tokens(text_: str) -> list[str]:
    from keysteward.tokens.access import ISSUER
    from keysteward.tokens.prefix import API_TOKEN_PATTERN, has_valid_checksum

    leaked = [t for t in API_TOKEN_PATTERN.findall(text_) if has_valid_checksum(t)]
    for candidate in _JWT_SHAPE.findall(text_):
        payload = candidate.split(".")[1]
        try:
            claims = json.loads(
                base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4))
            )
        except ValueError:
            continue
        if isinstance(claims, dict) and claims.get("iss") == ISSUER:
            leaked.append(candidate)
    return leaked


@pytest.hookimpl(wrapper=True)
def pytest_runtest_makereport(
    item: pytest.Item, call: pytest.CallInfo[None]
) -> Iterator[None]:
    report = yield
    # The teardown report carries the captures of setup, call and teardown.
    if report.when != "teardown":
        return report
    captured = "\n".join(content for _title, content in report.sections)
    leaked = _leaked_tokens(captured)
    if leaked and not report.failed:
        report.outcome = "failed"
        report.longrepr = (
            f"{len(leaked)} issued token(s) appeared in the captured output or "
            "logs of this test; tokens must never be printed or logged"
        )
    return report
