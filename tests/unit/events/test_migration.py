"""The hash-chain migration chains events recorded before it, in id order."""

import os
import secrets
from collections.abc import Iterator
from pathlib import Path

import psycopg
import pytest
from alembic import command
from sqlalchemy import Engine, create_engine, text
from sqlalchemy.engine import make_url
from sqlalchemy.exc import DBAPIError
from sqlalchemy.orm import Session

from keysteward.db import alembic_config, create_store_engine
from keysteward.events.verify import verify_chain

POSTGRES_ADMIN_URL = os.environ.get(
    "KEYSTEWARD_TEST_POSTGRES_URL",
    "postgresql+psycopg://postgres@127.0.0.1:5432/postgres",
)


@pytest.fixture(params=["sqlite", "postgresql"])
def foundation_engine(
    request: pytest.FixtureRequest, tmp_path: Path
) -> Iterator[Engine]:
    """An engine on an empty database migrated only to the foundation revision."""
    if request.param == "sqlite":
        engine = create_store_engine(f"sqlite+pysqlite:///{tmp_path / 'old.db'}")
        command.upgrade(alembic_config(engine), "0001_foundation")
        yield engine
        engine.dispose()
        return
    name = f"keysteward_test_migration_{secrets.token_hex(4)}"
    admin = make_url(POSTGRES_ADMIN_URL)
    admin_dsn = admin.set(drivername="postgresql").render_as_string(False)
    with psycopg.connect(admin_dsn, autocommit=True) as connection:
        connection.execute(f'CREATE DATABASE "{name}"')
    engine = create_engine(admin.set(database=name).render_as_string(False))
    try:
        command.upgrade(alembic_config(engine), "0001_foundation")
        yield engine
    finally:
        engine.dispose()
        with psycopg.connect(admin_dsn, autocommit=True) as connection:
            connection.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def _insert_old_events(engine: Engine, count: int) -> None:
    with engine.begin() as connection:
        for number in range(count):
            connection.execute(
                text(
                    "INSERT INTO events (occurred_at, actor, action, outcome, "
                    "details) VALUES (:at, 'legacy', :action, 'success', '{}')"
                ),
                {"at": f"2026-01-0{number + 1} 10:00:00", "action": f"old.{number}"},
            )


def test_upgrade_chains_existing_events(foundation_engine: Engine) -> None:
    _insert_old_events(foundation_engine, 3)
    command.upgrade(alembic_config(foundation_engine), "events@head")
    with Session(foundation_engine) as session:
        report = verify_chain(session)
        head = session.execute(
            text("SELECT last_sequence FROM event_chain_head")
        ).scalar_one()
    assert report.valid, report.problems
    assert report.events_checked == 3
    assert head == 3


def test_upgrade_restores_triggers(foundation_engine: Engine) -> None:
    _insert_old_events(foundation_engine, 1)
    command.upgrade(alembic_config(foundation_engine), "events@head")
    with (
        pytest.raises(DBAPIError, match="append-only"),
        foundation_engine.begin() as connection,
    ):
        connection.execute(text("UPDATE events SET actor = 'mallory'"))


def test_downgrade_keeps_triggers(foundation_engine: Engine) -> None:
    _insert_old_events(foundation_engine, 2)
    config = alembic_config(foundation_engine)
    command.upgrade(config, "events@head")
    command.downgrade(config, "0001_foundation")
    with (
        pytest.raises(DBAPIError, match="append-only"),
        foundation_engine.begin() as connection,
    ):
        connection.execute(text("DELETE FROM events"))
