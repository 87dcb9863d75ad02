"""Engine, sessions and schema migrations for the store.

The same code and the same Alembic migrations serve SQLite (the embedded
default) and PostgreSQL; nothing here branches on the backend except the
connection setup each backend needs.
"""

import logging
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime
from importlib import resources
from typing import Any

from alembic import command
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import JSON, DateTime, Engine, MetaData, create_engine, event, text
from sqlalchemy.exc import OperationalError
from sqlalchemy.orm import DeclarativeBase, Session, sessionmaker

from keysteward.config import Settings, redact_url
from keysteward.errors import ConfigError

log = logging.getLogger(__name__)

NAMING_CONVENTION = {
    "ix": "ix_%(column_0_label)s",
    "uq": "uq_%(table_name)s_%(column_0_N_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}

# An arbitrary constant that names keysteward's migration lock on PostgreSQL.
MIGRATION_LOCK_ID = 0x6B657973
# The execution option that makes a SQLite transaction begin deferred.
READ_ONLY_OPTION = "keysteward_read_only"


class Base(DeclarativeBase):
    metadata = MetaData(naming_convention=NAMING_CONVENTION)
    type_annotation_map = {
        datetime: DateTime(timezone=True),
        dict[str, Any]: JSON,
        list[str]: JSON,
    }


@dataclass
class Store:
    """An open store: the engine and the session factory bound to it."""

    settings: Settings
    engine: Engine
    session_factory: sessionmaker[Session]
    # True when this open found no schema and created it: a new, empty store.
    created: bool = False

    @contextmanager
    def session(self) -> Iterator[Session]:
        """Yield a session in one transaction, committed on success."""
        with self.session_factory.begin() as session:
            yield session

    @contextmanager
    def read_snapshot(self) -> Iterator[Session]:
        """Yield a read-only session whose queries all see one state of the database.

        For reports that read several tables, or one table twice, while other
        processes write. It blocks no writer: on SQLite the transaction
        begins deferred, without the write lock that other sessions take,
        and in WAL mode its first read fixes the state it sees. PostgreSQL
        runs it at REPEATABLE READ, because at its default READ COMMITTED
        each query reads the newest commits. Anything written in it is rolled
        back at the end.
        """
        options: dict[str, Any] = {"isolation_level": "REPEATABLE READ"}
        if self.engine.dialect.name == "sqlite":
            options = {READ_ONLY_OPTION: True}
        with self.engine.connect() as connection:
            connection.execution_options(**options)
            with Session(bind=connection) as session:
                try:
                    yield session
                finally:
                    session.rollback()

    @property
    def url(self) -> str:
        return redact_url(self.settings.resolved_database_url)


def create_store_engine(url: str, sqlite_synchronous: str = "FULL") -> Engine:
    """Create an engine with the connection settings each backend needs.

    ``sqlite_synchronous`` is SQLite's ``PRAGMA synchronous``, FULL or NORMAL.
    """
    if url.startswith("sqlite"):
        if sqlite_synchronous not in ("FULL", "NORMAL"):
            raise ConfigError(
                f"invalid KEYSTEWARD_SQLITE_SYNCHRONOUS={sqlite_synchronous!r}; "
                "use FULL or NORMAL"
            )
        engine = create_engine(url, connect_args={"timeout": 30})

        def configure(dbapi_connection: Any, _record: Any) -> None:
            _configure_sqlite(dbapi_connection, sqlite_synchronous)

        event.listen(engine, "connect", configure)
        event.listen(engine, "begin", _begin_sqlite)
        return engine
    return create_engine(url, pool_pre_ping=True)


def _configure_sqlite(dbapi_connection: Any, synchronous: str) -> None:
    # Let SQLAlchemy issue BEGIN itself (see _begin_sqlite), so transactions
    # cover reads too.
    dbapi_connection.isolation_level = None
    cursor = dbapi_connection.cursor()
    cursor.execute("PRAGMA journal_mode=WAL")
    cursor.execute("PRAGMA foreign_keys=ON")
    cursor.execute("PRAGMA busy_timeout=30000")
    # In WAL mode NORMAL syncs at checkpoints only, not at each commit.
    cursor.execute(f"PRAGMA synchronous={synchronous}")
    cursor.close()


def _begin_sqlite(connection: Any) -> None:
    # A deferred transaction that reads and then writes fails at once with
    # "database is locked" when another process committed in between, and
    # the busy timeout does not help. Taking the write lock at BEGIN makes
    # concurrent commands queue for up to the busy timeout instead. Read-only
    # transactions take the lock too, so they queue behind writers and each
    # other; PostgreSQL is the backend for many concurrent clients. Only
    # Store.read_snapshot, which never writes, begins deferred.
    if connection.get_execution_options().get(READ_ONLY_OPTION):
        connection.exec_driver_sql("BEGIN")
        return
    connection.exec_driver_sql("BEGIN IMMEDIATE")


def open_store(settings: Settings, migrate: bool = True) -> Store:
    """Open the store named by ``settings``, creating and migrating it if needed.

    Raises ConfigError naming KEYSTEWARD_DATABASE_URL when the database cannot
    be reached.
    """
    url = settings.resolved_database_url
    if not settings.database_url:
        settings.home.mkdir(parents=True, exist_ok=True, mode=0o700)
    engine = create_store_engine(url, settings.sqlite_synchronous)
    try:
        with engine.connect() as connection:
            connection.execute(text("SELECT 1"))
    except OperationalError as exc:
        engine.dispose()
        reason = str(exc.orig).strip().splitlines()[0] if exc.orig else str(exc)
        raise ConfigError(
            "cannot connect to the store at "
            f"KEYSTEWARD_DATABASE_URL={redact_url(url)}: {reason}. "
            "Check that the server is running and the URL is right."
        ) from None
    created = not schema_revisions(engine)
    if migrate:
        upgrade_schema(engine)
    factory = sessionmaker(engine, expire_on_commit=False)
    return Store(
        settings=settings,
        engine=engine,
        session_factory=factory,
        created=created and migrate,
    )


def alembic_config(engine: Engine) -> Config:
    config = Config()
    config.set_main_option(
        "script_location", str(resources.files("keysteward") / "migrations")
    )
    config.attributes["engine"] = engine
    return config


def upgrade_schema(engine: Engine) -> None:
    """Apply every pending migration, once even when processes start together.

    On PostgreSQL a session-level advisory lock serializes concurrent
    upgrades; SQLite serializes writers by itself.
    """
    config = alembic_config(engine)
    if engine.dialect.name == "postgresql":
        with engine.connect() as lock_connection:
            lock_connection.execute(
                text("SELECT pg_advisory_lock(:id)"), {"id": MIGRATION_LOCK_ID}
            )
            try:
                _upgrade_if_needed(engine, config)
            finally:
                lock_connection.execute(
                    text("SELECT pg_advisory_unlock(:id)"), {"id": MIGRATION_LOCK_ID}
                )
                lock_connection.commit()
    else:
        _upgrade_if_needed(engine, config)


def _upgrade_if_needed(engine: Engine, config: Config) -> None:
    if not pending_revisions(engine):
        return
    log.info("migrating store schema", extra={"heads": sorted(head_revisions(engine))})
    command.upgrade(config, "heads")


def schema_revisions(engine: Engine) -> set[str]:
    """Return the migration revisions the database is at."""
    with engine.connect() as connection:
        return set(MigrationContext.configure(connection).get_current_heads())


def pending_revisions(engine: Engine) -> set[str]:
    """Return the migrations this version of keysteward ships but has not applied.

    The database records only the newest revision of each branch, and none
    that a newer revision depends on, so applied revisions are found by
    walking down from the recorded ones.
    """
    script = ScriptDirectory.from_config(alembic_config(engine))
    shipped = {revision.revision for revision in script.walk_revisions()}
    current = tuple(schema_revisions(engine))
    applied = {
        revision.revision
        for revision in script.iterate_revisions(current, "base")
        if revision is not None
    }
    return shipped - applied


def head_revisions(engine: Engine) -> set[str]:
    """Return the newest migration revisions this version of keysteward ships."""
    script = ScriptDirectory.from_config(alembic_config(engine))
    return set(script.get_heads())
