"""Edits of the event log made the way an attacker with database access would.

Each edit drops the append-only triggers, changes rows and puts the
triggers back, all in one transaction, so a shared PostgreSQL database
keeps them.
"""

from sqlalchemy import Connection, TextClause, text

from keysteward.db import Store

SQLITE_TRIGGERS = {
    "events_no_update": "BEFORE UPDATE ON events",
    "events_no_delete": "BEFORE DELETE ON events",
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
    if connection.dialect.name == "postgresql":
        connection.execute(text("DROP TRIGGER events_append_only ON events"))
        return
    for name in SQLITE_TRIGGERS:
        connection.execute(text(f"DROP TRIGGER {name}"))


def create_triggers(connection: Connection) -> None:
    if connection.dialect.name == "postgresql":
        connection.execute(
            text(
                "CREATE TRIGGER events_append_only BEFORE UPDATE OR DELETE ON events "
                "FOR EACH ROW EXECUTE FUNCTION keysteward_events_append_only()"
            )
        )
        return
    for name, timing in SQLITE_TRIGGERS.items():
        connection.execute(
            text(
                f"CREATE TRIGGER {name} {timing} "
                "BEGIN SELECT RAISE(ABORT, 'events are append-only'); END"
            )
        )
