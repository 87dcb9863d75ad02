"""Backup and restore: round trip across backends, wrong key, non-empty store."""

import base64
import json
import zlib
from pathlib import Path

import pytest
from sqlalchemy import func, select, text

from keysteward.credentials.services import fingerprint_salt
from keysteward.crypto import aead
from keysteward.crypto.aead import DecryptionError
from keysteward.db import Base, Store
from keysteward.identities.models import Person
from keysteward.tokens.principals import Principal, PrincipalType
from keysteward.tokens.services import authenticate_api_token, issue_api_token
from keysteward.vault.backup import (
    MAGIC,
    BackupError,
    read_backup,
    restore_backup,
    write_backup,
)
from keysteward.vault.keys import BACKUP_KEY_PURPOSE, KeyRing
from keysteward.vault.services import put_secret, read_secret_as_operator


def _fill(store: Store, keyring: KeyRing, make_account) -> str:
    principal = make_account("crm-sync", "keysteward:secrets/*:read")
    with store.session() as session:
        manager = Person(name="Late Manager", email="late@example.com")
        report = Person(name="Early Report", email="early@example.com")
        session.add(report)
        session.flush()
        session.add(manager)
        session.flush()
        # The manager row has the higher id, so restore must defer the link.
        report.manager_id = manager.id
        put_secret(session, keyring, "hubspot", b"first", actor="t")
        put_secret(session, keyring, "hubspot", b"second", actor="t")
        put_secret(session, keyring, "binary", bytes(range(256)), actor="t")
        fingerprint_salt(session)
        issued = issue_api_token(session, principal, actor="t")
        return issued.token


def _empty(store: Store) -> None:
    if store.engine.dialect.name != "postgresql":
        return
    names = ", ".join(f'"{table.name}"' for table in Base.metadata.sorted_tables)
    with store.engine.begin() as connection:
        connection.execute(text(f"TRUNCATE {names} RESTART IDENTITY CASCADE"))


@pytest.fixture
def other_store(request: pytest.FixtureRequest, store: Store) -> Store:
    """An empty store on the other backend than ``store``."""
    if store.engine.dialect.name == "postgresql":
        target: Store = request.getfixturevalue("sqlite_store")
        return target
    target = request.getfixturevalue("postgres_store")
    _empty(target)
    return target


def _counts(store: Store) -> dict[str, int]:
    with store.session() as session:
        return {
            table.name: session.scalar(select(func.count()).select_from(table)) or 0
            for table in Base.metadata.sorted_tables
        }


def test_round_trip_across_backends(
    store: Store, other_store: Store, keyring: KeyRing, make_account, tmp_path: Path
) -> None:
    token = _fill(store, keyring, make_account)
    path = tmp_path / "store.ksbackup"
    written = write_backup(store, keyring, path)
    assert path.stat().st_mode & 0o777 == 0o600
    assert b"second" not in path.read_bytes()

    result = restore_backup(other_store, keyring, path)
    assert result.verified_versions == 3
    assert result.rows == written
    assert _counts(other_store) == _counts(store)
    with other_store.session() as session:
        read = read_secret_as_operator(session, keyring, "hubspot", actor="t")
        assert read.value == b"second"
        binary = read_secret_as_operator(session, keyring, "binary", actor="t")
        assert binary.value == bytes(range(256))
        report = session.scalar(
            select(Person).where(Person.email == "early@example.com")
        )
        assert report is not None
        assert report.manager is not None
        assert report.manager.email == "late@example.com"
        principal, _record = authenticate_api_token(session, token)
        assert principal.name == "crm-sync"
    with store.session() as source, other_store.session() as target:
        assert fingerprint_salt(source) == fingerprint_salt(target)
    # New rows get fresh ids after the restored ones.
    with other_store.session() as session:
        row = put_secret(session, keyring, "after-restore", b"new", actor="t")
        assert row.id > 3


def test_restore_wrong_key_writes_nothing(
    store: Store,
    other_store: Store,
    keyring: KeyRing,
    other_keyring: KeyRing,
    make_account,
    tmp_path: Path,
) -> None:
    _fill(store, keyring, make_account)
    path = tmp_path / "store.ksbackup"
    write_backup(store, keyring, path)
    before = _counts(other_store)
    with pytest.raises(DecryptionError):
        restore_backup(other_store, other_keyring, path)
    assert _counts(other_store) == before


def test_restore_into_non_empty_rejected(
    store: Store, keyring: KeyRing, make_account, tmp_path: Path
) -> None:
    _fill(store, keyring, make_account)
    path = tmp_path / "store.ksbackup"
    write_backup(store, keyring, path)
    before = _counts(store)
    with pytest.raises(BackupError, match="restore into an empty store"):
        restore_backup(store, keyring, path)
    assert _counts(store) == before


def test_restore_not_a_backup(store: Store, keyring: KeyRing, tmp_path: Path) -> None:
    path = tmp_path / "notes.txt"
    path.write_text("hello")
    with pytest.raises(BackupError, match="not a keysteward backup"):
        restore_backup(store, keyring, path)


def test_restore_tampered_backup(
    store: Store, other_store: Store, keyring: KeyRing, make_account, tmp_path: Path
) -> None:
    _fill(store, keyring, make_account)
    path = tmp_path / "store.ksbackup"
    write_backup(store, keyring, path)
    data = bytearray(path.read_bytes())
    data[-5] ^= 0x40
    path.write_bytes(bytes(data))
    with pytest.raises(DecryptionError):
        restore_backup(other_store, keyring, path)


def test_principal_type_values() -> None:
    # Backups store principal types as text; the names must stay stable.
    assert [str(kind) for kind in PrincipalType] == ["service_account", "person"]
    assert Principal(PrincipalType.PERSON, 1, "a@example.com").label == (
        "person:a@example.com"
    )


def test_restore_rolls_back_undecryptable_secret(
    store: Store, other_store: Store, keyring: KeyRing, make_account, tmp_path: Path
) -> None:
    _fill(store, keyring, make_account)
    path = tmp_path / "store.ksbackup"
    write_backup(store, keyring, path)
    # Re-seal the backup with one version's ciphertext damaged inside it, so
    # the file decrypts but that secret does not.
    document = read_backup(keyring, path)
    version = document["tables"]["vault_secret_versions"][0]
    sealed = bytearray(base64.b64decode(version["ciphertext"]))
    sealed[-1] ^= 0x01
    version["ciphertext"] = base64.b64encode(bytes(sealed)).decode()
    plaintext = zlib.compress(json.dumps(document).encode())
    backup_key = keyring.derived_key(BACKUP_KEY_PURPOSE)
    path.write_bytes(MAGIC + aead.encrypt(backup_key, plaintext, MAGIC))
    before = _counts(other_store)
    with pytest.raises(DecryptionError):
        restore_backup(other_store, keyring, path)
    assert _counts(other_store) == before
