"""Appending chained events over a driver cursor, without the ORM.

For writers that commit events and nothing else, the ORM's unit of work and
SQL compilation cost several times the inserts themselves. ``append_rows``
links validated entries into the same chain as ``events.chain`` (same
canonical form and digests) and writes them with plain SQL in the cursor's
transaction. The caller owns the transaction.
"""

import weakref
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from sqlalchemy import Dialect

from keysteward.clock import as_utc, utcnow
from keysteward.events.chain import (
    GENESIS_DIGEST,
    AppendedSpan,
    canonical_fields,
    compute_digest,
)
from keysteward.events.models import Event


@dataclass(frozen=True)
class _Statements:
    touch_head: str
    select_head: str
    create_head: str
    insert_event: str
    update_head: str


# psycopg takes %s placeholders, sqlite3 takes ?, and the chain head row
# always has id 1 (events.chain.HEAD_ROW_ID). SQLite needs the WHERE clause
# to parse INSERT ... SELECT ... ON CONFLICT.
_SQLITE = _Statements(
    touch_head="UPDATE event_chain_head SET last_sequence = last_sequence WHERE id = 1",
    select_head="SELECT last_sequence, last_digest FROM event_chain_head WHERE id = 1",
    create_head=(
        "INSERT INTO event_chain_head (id, last_sequence, last_digest) "
        "SELECT 1, coalesce(max(sequence), 0), coalesce((SELECT digest FROM events "
        "ORDER BY sequence DESC LIMIT 1), ?) FROM events WHERE true "
        "ON CONFLICT (id) DO NOTHING"
    ),
    insert_event=(
        "INSERT INTO events (occurred_at, actor, action, target_type, target_id, "
        "outcome, source_address, request_id, details, sequence, previous_digest, "
        "digest) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)"
    ),
    update_head=(
        "UPDATE event_chain_head SET last_sequence = ?, last_digest = ? WHERE id = 1"
    ),
)
_POSTGRESQL = _Statements(
    touch_head=_SQLITE.touch_head,
    select_head=(
        "SELECT last_sequence, last_digest FROM event_chain_head WHERE id = 1 "
        "FOR UPDATE"
    ),
    create_head=(
        "INSERT INTO event_chain_head (id, last_sequence, last_digest) "
        "SELECT 1, coalesce(max(sequence), 0), coalesce((SELECT digest FROM events "
        "ORDER BY sequence DESC LIMIT 1), %s) FROM events WHERE true "
        "ON CONFLICT (id) DO NOTHING"
    ),
    insert_event=(
        "INSERT INTO events (occurred_at, actor, action, target_type, target_id, "
        "outcome, source_address, request_id, details, sequence, previous_digest, "
        "digest) VALUES (%s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s)"
    ),
    update_head=(
        "UPDATE event_chain_head SET last_sequence = %s, last_digest = %s WHERE id = 1"
    ),
)


def append_rows(
    cursor: Any,
    dialect: Dialect,
    checked: list[dict[str, Any]],
    *,
    write_locked: bool = False,
) -> AppendedSpan:
    """Chain and insert ``checked`` entries, and return the span they take.

    ``checked`` comes from ``events.services.checked_entries``. The chain
    head is locked first (FOR UPDATE on PostgreSQL, SQLite's write lock
    otherwise, unless ``write_locked`` is true because the transaction began
    with BEGIN IMMEDIATE) and is recreated from the newest event when its row is
    missing, which happens only after a TRUNCATE.
    """
    statements = _POSTGRESQL if dialect.name == "postgresql" else _SQLITE
    if dialect.name != "postgresql" and not write_locked:
        cursor.execute(statements.touch_head)
    cursor.execute(statements.select_head)
    head = cursor.fetchone()
    if head is None:
        cursor.execute(statements.create_head, (GENESIS_DIGEST,))
        cursor.execute(statements.select_head)
        head = cursor.fetchone()
    last_sequence, last_digest = int(head[0]), str(head[1])
    start_sequence, start_digest = last_sequence, last_digest
    if not checked:
        return AppendedSpan(start_sequence, start_digest, last_sequence, last_digest)
    to_time = _bind_processor("occurred_at", dialect)
    to_json = _bind_processor("details", dialect)
    rows: list[tuple[Any, ...]] = []
    for values in checked:
        last_sequence += 1
        occurred_at = as_utc(values.get("occurred_at")) or utcnow()
        fields = canonical_fields(
            sequence=last_sequence,
            previous_digest=last_digest,
            occurred_at=occurred_at,
            actor=values["actor"],
            action=values["action"],
            target_type=values.get("target_type"),
            target_id=values.get("target_id"),
            outcome=values.get("outcome") or "success",
            source_address=values.get("source_address"),
            request_id=values.get("request_id"),
            details=values["details"],
        )
        digest = compute_digest(fields)
        rows.append(
            (
                to_time(occurred_at),
                fields["actor"],
                fields["action"],
                fields["target_type"],
                fields["target_id"],
                fields["outcome"],
                fields["source_address"],
                fields["request_id"],
                to_json(fields["details"]),
                last_sequence,
                last_digest,
                digest,
            )
        )
        last_digest = digest
    cursor.executemany(statements.insert_event, rows)
    cursor.execute(statements.update_head, (last_sequence, last_digest))
    return AppendedSpan(start_sequence, start_digest, last_sequence, last_digest)


def _bind_processor(column: str, dialect: Dialect) -> Callable[[Any], Any]:
    """Return the function that turns a Python value into the driver's value."""
    by_column = _bind_processors.setdefault(dialect, {})
    processor = by_column.get(column)
    if processor is None:
        column_type = Event.__table__.c[column].type
        found = column_type.dialect_impl(dialect).bind_processor(dialect)
        processor = found if found is not None else _unchanged
        by_column[column] = processor
    return processor


# Kept per dialect object, which lives as long as its engine, because
# looking a processor up costs as much as applying it to a whole row.
_Processors = dict[str, Callable[[Any], Any]]
_bind_processors: "weakref.WeakKeyDictionary[Dialect, _Processors]" = (
    weakref.WeakKeyDictionary()
)


def _unchanged(value: Any) -> Any:
    return value
