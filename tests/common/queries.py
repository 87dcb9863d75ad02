"""Count the SQL statements a block of code sends to a store's database."""

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from sqlalchemy import event

from keysteward.db import Store


@contextmanager
def count_queries(store: Store) -> Iterator[list[str]]:
    """Yield a list that collects every statement executed on ``store``'s engine."""
    statements: list[str] = []

    def record(
        _conn: Any, _cursor: Any, statement: str, *_rest: Any, **_kw: Any
    ) -> None:
        statements.append(statement)

    event.listen(store.engine, "before_cursor_execute", record)
    try:
        yield statements
    finally:
        event.remove(store.engine, "before_cursor_execute", record)
