"""Encrypted backups of the whole store, portable between SQLite and PostgreSQL.

A backup contains every table of ``Base.metadata`` as JSON, compressed with
zlib and encrypted with AES-256-GCM under a key derived from the master key,
so restoring needs the same master key. Values are written by column type
(bytes as base64, times as ISO 8601), so rows read from one backend load
into the other.

File layout: the magic line ``KSBACKUP1\\n``, then nonce, ciphertext and tag.
The magic line is the associated data, so a file of another format fails to
decrypt instead of being misread.
"""

import base64
import json
import os
import tempfile
import zlib
from collections.abc import Callable
from dataclasses import dataclass
from datetime import date, datetime
from pathlib import Path
from typing import Any

from sqlalchemy import Date, DateTime, LargeBinary, Table, func, select, text
from sqlalchemy.engine import Connection

import keysteward.models  # noqa: F401  (registers every table on Base.metadata)
from keysteward.clock import as_utc, utcnow
from keysteward.crypto import aead
from keysteward.db import (
    Base,
    Store,
    create_store_engine,
    head_revisions,
    schema_revisions,
    upgrade_schema,
)
from keysteward.errors import InvalidInputError
from keysteward.vault.keys import BACKUP_KEY_PURPOSE, KeyRing
from keysteward.vault.services import verify_all_versions

MAGIC = b"KSBACKUP1\n"
FORMAT_VERSION = 1


class BackupError(InvalidInputError):
    pass


@dataclass(frozen=True)
class RestoreResult:
    rows: dict[str, int]
    verified_versions: int


def _encode(table: Table, row: dict[str, Any]) -> dict[str, Any]:
    encoded: dict[str, Any] = {}
    for column in table.columns:
        value = row[column.name]
        if value is None:
            encoded[column.name] = None
        elif isinstance(column.type, LargeBinary):
            encoded[column.name] = base64.b64encode(value).decode()
        elif isinstance(column.type, DateTime):
            encoded[column.name] = as_utc(value).isoformat()  # type: ignore[union-attr]
        elif isinstance(column.type, Date):
            encoded[column.name] = value.isoformat()
        else:
            encoded[column.name] = value
    return encoded


def _decode(table: Table, row: dict[str, Any]) -> dict[str, Any]:
    decoded: dict[str, Any] = {}
    for column in table.columns:
        value = row.get(column.name)
        if value is None:
            decoded[column.name] = None
        elif isinstance(column.type, LargeBinary):
            decoded[column.name] = base64.b64decode(value)
        elif isinstance(column.type, DateTime):
            decoded[column.name] = datetime.fromisoformat(value)
        elif isinstance(column.type, Date):
            decoded[column.name] = date.fromisoformat(value)
        else:
            decoded[column.name] = value
    return decoded


# A cache-invalidation counter, not data: a restored store keeps its own,
# which the triggers raise as the restored rows go in.
NOT_BACKED_UP = frozenset({"vault_read_generation"})


def dump_tables(connection: Connection) -> dict[str, list[dict[str, Any]]]:
    """Return every row of every table, encoded for JSON, by table name."""
    tables: dict[str, list[dict[str, Any]]] = {}
    for table in Base.metadata.sorted_tables:
        if table.name in NOT_BACKED_UP:
            continue
        order = list(table.primary_key.columns) or list(table.columns)
        result = connection.execute(select(table).order_by(*order))
        tables[table.name] = [_encode(table, dict(row._mapping)) for row in result]
    return tables


def write_backup(store: Store, keyring: KeyRing, path: Path) -> dict[str, int]:
    """Write an encrypted backup of ``store`` to ``path`` (mode 0600).

    Returns the number of rows per table.
    """
    with store.engine.connect() as connection, connection.begin():
        tables = dump_tables(connection)
    document = {
        "format": FORMAT_VERSION,
        "created_at": utcnow().isoformat(),
        "schema": sorted(schema_revisions(store.engine)),
        "tables": tables,
    }
    plaintext = zlib.compress(json.dumps(document).encode(), level=6)
    sealed = aead.encrypt(keyring.derived_key(BACKUP_KEY_PURPOSE), plaintext, MAGIC)
    temporary = path.with_name(path.name + ".partial")
    descriptor = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(descriptor, "wb") as handle:
        handle.write(MAGIC + sealed)
    temporary.replace(path)
    return {name: len(rows) for name, rows in tables.items()}


def read_backup(keyring: KeyRing, path: Path) -> dict[str, Any]:
    """Decrypt and parse the backup at ``path``.

    Raises BackupError when the file is not a keysteward backup, and the bare
    DecryptionError when it does not decrypt under this master key.
    """
    data = path.read_bytes()
    if not data.startswith(MAGIC):
        raise BackupError(f"{path} is not a keysteward backup (no KSBACKUP1 header)")
    plaintext = aead.decrypt(
        keyring.derived_key(BACKUP_KEY_PURPOSE), data[len(MAGIC) :], MAGIC
    )
    document: dict[str, Any] = json.loads(zlib.decompress(plaintext))
    if document.get("format") != FORMAT_VERSION:
        raise BackupError(
            f"{path} has backup format {document.get('format')!r}; this version of "
            f"keysteward reads format {FORMAT_VERSION}"
        )
    return document


def fresh_store_row_counts() -> dict[str, int]:
    """Return the rows per table that a newly migrated store starts with."""
    with tempfile.TemporaryDirectory() as folder:
        engine = create_store_engine(f"sqlite+pysqlite:///{Path(folder) / 'fresh.db'}")
        try:
            upgrade_schema(engine)
            with engine.connect() as connection:
                return {
                    table.name: connection.scalar(
                        select(func.count()).select_from(table)
                    )
                    or 0
                    for table in Base.metadata.sorted_tables
                }
        finally:
            engine.dispose()


def _self_referencing_columns(table: Table) -> list[str]:
    return [fk.parent.name for fk in table.foreign_keys if fk.column.table is table]


def _insert_rows(
    connection: Connection, table: Table, rows: list[dict[str, Any]]
) -> None:
    if not rows:
        return
    decoded = [_decode(table, row) for row in rows]
    deferred = _self_referencing_columns(table)
    first_pass = (
        [{**row, **dict.fromkeys(deferred)} for row in decoded] if deferred else decoded
    )
    connection.execute(table.insert(), first_pass)
    # Rows may point at rows of the same table inserted after them (a
    # person's manager), so those links are set once every row exists.
    primary = list(table.primary_key.columns)
    for row in decoded if deferred else []:
        links = {name: row[name] for name in deferred if row[name] is not None}
        if links:
            where = [column == row[column.name] for column in primary]
            connection.execute(table.update().where(*where).values(**links))


def _reset_sequences(connection: Connection) -> None:
    """Move PostgreSQL id sequences past the restored ids."""
    if connection.dialect.name != "postgresql":
        return
    for table in Base.metadata.sorted_tables:
        primary = list(table.primary_key.columns)
        if (
            len(primary) != 1
            or not primary[0].autoincrement
            or primary[0].type.python_type is not int
        ):
            continue
        sequence = connection.scalar(
            text("SELECT pg_get_serial_sequence(:table, :column)"),
            {"table": table.name, "column": primary[0].name},
        )
        if sequence is None:
            continue
        highest = connection.scalar(select(func.max(primary[0])))
        connection.execute(
            text("SELECT setval(:sequence, :value, :called)"),
            {
                "sequence": sequence,
                "value": highest or 1,
                "called": highest is not None,
            },
        )


def restore_backup(
    store: Store,
    keyring: KeyRing,
    path: Path,
    on_table: Callable[[str, int], None] | None = None,
) -> RestoreResult:
    """Load the backup at ``path`` into an empty ``store`` and check every secret.

    Everything happens in one transaction: if the store is not empty, the
    schema differs, or any secret version fails to decrypt afterwards,
    nothing is written.
    """
    document = read_backup(keyring, path)
    expected = sorted(head_revisions(store.engine))
    if sorted(document.get("schema", [])) != sorted(schema_revisions(store.engine)):
        raise BackupError(
            f"{path} was written at schema {', '.join(document.get('schema', []))}, "
            f"but this store is at {', '.join(expected)}; restore with the keysteward "
            "version that wrote the backup"
        )
    tables: dict[str, list[dict[str, Any]]] = document["tables"]
    counts: dict[str, int] = {}
    with store.session() as session:
        connection = session.connection()
        seeded = fresh_store_row_counts()
        for table in Base.metadata.sorted_tables:
            present = connection.scalar(select(func.count()).select_from(table)) or 0
            if present > seeded.get(table.name, 0):
                raise BackupError(
                    f"table {table.name} already contains {present} rows; restore into "
                    "an empty store (a new KEYSTEWARD_HOME or database)"
                )
        for table in reversed(Base.metadata.sorted_tables):
            # Rows a new store starts with (such as a log's chain head) are
            # replaced by the backup's.
            if seeded.get(table.name) and tables.get(table.name):
                connection.execute(table.delete())
        for table in Base.metadata.sorted_tables:
            if table.name in NOT_BACKED_UP:
                continue
            rows = tables.get(table.name, [])
            _insert_rows(connection, table, rows)
            counts[table.name] = len(rows)
            if on_table is not None:
                on_table(table.name, len(rows))
        _reset_sequences(connection)
        session.expire_all()
        verified = verify_all_versions(session, keyring)
    return RestoreResult(counts, verified)
