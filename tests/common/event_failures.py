"""A database that rejects every event insert, as a full disk would."""

from collections.abc import Iterator
from contextlib import contextmanager

from keysteward.db import Store

# The message of the database error that each rejected insert raises.
REJECTED_MESSAGE = "event log unavailable"


@contextmanager
def events_rejected(store: Store) -> Iterator[None]:
    """Make the database fail every insert into ``events`` until the block ends."""
    with store.engine.begin() as connection:
        if connection.dialect.name == "postgresql":
            connection.exec_driver_sql(
                "CREATE FUNCTION reject_event() RETURNS trigger AS $$ BEGIN "
                f"RAISE EXCEPTION '{REJECTED_MESSAGE}'; END $$ LANGUAGE plpgsql"
            )
            connection.exec_driver_sql(
                "CREATE TRIGGER reject_event BEFORE INSERT ON events "
                "FOR EACH ROW EXECUTE FUNCTION reject_event()"
            )
        else:
            connection.exec_driver_sql(
                "CREATE TRIGGER reject_event BEFORE INSERT ON events "
                f"BEGIN SELECT RAISE(ABORT, '{REJECTED_MESSAGE}'); END"
            )
    try:
        yield
    finally:
        with store.engine.begin() as connection:
            if connection.dialect.name == "postgresql":
                connection.exec_driver_sql("DROP TRIGGER reject_event ON events")
                connection.exec_driver_sql("DROP FUNCTION reject_event()")
            else:
                connection.exec_driver_sql("DROP TRIGGER reject_event")
