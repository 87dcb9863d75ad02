"""Edits of the event log made the way an attacker with database access would.

Each edit drops the append-only triggers of ``events`` and
``event_checkpoints``, changes rows and puts the triggers back, all in one
transaction, so a shared PostgreSQL database keeps them.
"""

from sqlalchemy import Connection, TextClause, text

from keysteward.db import Store

APPEND_ONLY_TABLES = ("events", "event_checkpoints")
# PostgreSQL's trigger function of each table, as the migrations name them.
POSTGRESQL_FUNCTIONS = {
    "events": "keysteward_events_append_only",
    "event_checkpoints": "keysteward_event_checkpoints_append_only",
}


def sql(statement: str, **params: object) -> TextClause:
    return text(statement).bindparams(**params)


def tamper(store: Store, *statements: TextClause) -> None:
    with store.engine.begin() as connection:
        drop_triggers(connection)
        for statement in statements:
            connection.execute(statement)
        create_triggers(connection)


def drop_triggers(connection: Connection) -> None:
    for table in APPEND_ONLY_TABLES:
        if connection.dialect.name == "postgresql":
            connection.execute(text(f"DROP TRIGGER {table}_append_only ON {table}"))
            continue
        for operation in ("update", "delete"):
            connection.execute(text(f"DROP TRIGGER {table}_no_{operation}"))


def create_triggers(connection: Connection) -> None:
    for table in APPEND_ONLY_TABLES:
        if connection.dialect.name == "postgresql":
            connection.execute(
                text(
                    f"CREATE TRIGGER {table}_append_only BEFORE UPDATE OR DELETE "
                    f"ON {table} FOR EACH ROW EXECUTE FUNCTION "
                    f"{POSTGRESQL_FUNCTIONS[table]}()"
                )
            )
            continue
        for operation in ("UPDATE", "DELETE"):
            connection.execute(
                text(
                    f"CREATE TRIGGER {table}_no_{operation.lower()} "
                    f"BEFORE {operation} ON {table} "
                    f"BEGIN SELECT RAISE(ABORT, '{table} are append-only'); END"
                )
            )
