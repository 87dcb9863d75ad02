"""Appending chained events over a driver cursor, without the ORM.

For writers that commit events and nothing else, the ORM's unit of work and
SQL compilation cost several times the inserts themselves. ``append_rows``
links validated entries into the same chain as ``events.chain`` (same
canonical form and digests) and writes them with plain SQL in the cursor's
transaction. The caller owns the transaction.
"""

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from sqlalchemy import Dialect

from keysteward.events.chain import GENESIS_DIGEST, AppendedSpan, ChainPoint
from keysteward.events.encoding import EncodedEvent, encode_events
from keysteward.events.seal import seal_head, seal_valid


@dataclass(frozen=True)
class _Statements:
    touch_head: str
    select_head: str
    create_head: str
    insert_event: str
    update_head: str
    select_digest: str


# psycopg takes %s placeholders, sqlite3 takes ?, and the chain head row
# always has id 1 (events.chain.HEAD_ROW_ID). SQLite needs the WHERE clause
# to parse INSERT ... SELECT ... ON CONFLICT.
_SQLITE = _Statements(
    touch_head="UPDATE event_chain_head SET last_sequence = last_sequence WHERE id = 1",
    select_head=(
        "SELECT last_sequence, last_digest, seal FROM event_chain_head WHERE id = 1"
    ),
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
        "UPDATE event_chain_head SET last_sequence = ?, last_digest = ?, seal = ? "
        "WHERE id = 1"
    ),
    select_digest="SELECT digest FROM events WHERE sequence = ?",
)
_POSTGRESQL = _Statements(
    touch_head=_SQLITE.touch_head,
    select_head=(
        "SELECT last_sequence, last_digest, seal FROM event_chain_head WHERE id = 1 "
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
        "UPDATE event_chain_head SET last_sequence = %s, last_digest = %s, seal = %s "
        "WHERE id = 1"
    ),
    select_digest="SELECT digest FROM events WHERE sequence = %s",
)


def append_rows(
    cursor: Any,
    dialect: Dialect,
    entries: Iterable[Mapping[str, Any] | EncodedEvent],
    *,
    write_locked: bool = False,
    seal_key: bytes | None = None,
    trusted: ChainPoint | None = None,
) -> AppendedSpan:
    """Chain and insert event entries, and return the span they take.

    Entries are checked and encoded by ``encode_events`` unless they already
    are. The chain head is locked first: FOR UPDATE on PostgreSQL, and
    SQLite's write lock otherwise, unless ``write_locked`` is true because the
    transaction began with BEGIN IMMEDIATE. A missing head row, which only a
    TRUNCATE leaves, is recreated from the newest event.
    With ``seal_key`` the new head is sealed (see ``events.seal``) when the
    old one had a valid seal. Without it, the head is left unsealed.
    ``trusted`` is the caller's trusted point: when it is below a sealed head
    and its event is unchanged, the span records that it descends from it.
    """
    encoded = encode_events(entries, dialect)
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
    sealed = seal_key is not None and seal_valid(
        seal_key, last_sequence, last_digest, head[2]
    )
    descends_from = None
    if sealed and trusted is not None and trusted.sequence < last_sequence:
        cursor.execute(statements.select_digest, (trusted.sequence,))
        row = cursor.fetchone()
        if row is not None and row[0] == trusted.digest:
            descends_from = trusted
    if not encoded:
        return AppendedSpan(
            start_sequence,
            start_digest,
            last_sequence,
            last_digest,
            sealed,
            descends_from,
        )
    rows: list[tuple[Any, ...]] = []
    for event in encoded:
        last_sequence += 1
        digest = event.pieces.digest(last_sequence, last_digest)
        rows.append((*event.values, last_sequence, last_digest, digest))
        last_digest = digest
    cursor.executemany(statements.insert_event, rows)
    seal = None
    if sealed:
        assert seal_key is not None
        seal = seal_head(seal_key, last_sequence, last_digest)
    cursor.execute(statements.update_head, (last_sequence, last_digest, seal))
    return AppendedSpan(
        start_sequence, start_digest, last_sequence, last_digest, sealed, descends_from
    )
