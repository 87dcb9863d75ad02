"""Checkpoint signing keys, signed checkpoints and automatic checkpoints."""

import stat
from pathlib import Path

import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from sqlalchemy import func, select, text

from keysteward.db import Store
from keysteward.errors import ConfigError
from keysteward.events.automatic import enable_automatic_checkpoints
from keysteward.events.checkpoints import (
    checkpoint_signature_valid,
    create_checkpoint,
    load_signing_key,
)
from keysteward.events.models import EventCheckpoint
from keysteward.events.services import record_event, record_events
from keysteward.events.verify import verify_chain


def _record(store: Store, count: int) -> None:
    with store.session() as session:
        record_events(session, [{"actor": "a", "action": "x.create"}] * count)


def _write_other_key(path: Path) -> None:
    pem = Ed25519PrivateKey.generate().private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )
    path.write_bytes(pem)
    path.chmod(0o600)


def test_key_created_private(tmp_path: Path) -> None:
    home = tmp_path / "home"
    load_signing_key(home)
    key_mode = stat.S_IMODE((home / "checkpoint.key").stat().st_mode)
    assert key_mode == 0o600
    assert (home / "checkpoint.pub").exists()


def test_key_reused_on_second_load(tmp_path: Path) -> None:
    first = load_signing_key(tmp_path)
    second = load_signing_key(tmp_path)
    assert first.public_key() == second.public_key()


def test_group_readable_key_rejected(tmp_path: Path) -> None:
    load_signing_key(tmp_path)
    key_path = tmp_path / "checkpoint.key"
    key_path.chmod(0o640)
    with pytest.raises(ConfigError) as caught:
        load_signing_key(tmp_path)
    assert str(key_path) in str(caught.value)
    assert f"chmod 600 {key_path}" in str(caught.value)
    assert "0640" in str(caught.value)


def test_replaced_key_rejected(tmp_path: Path) -> None:
    load_signing_key(tmp_path)
    _write_other_key(tmp_path / "checkpoint.key")
    with pytest.raises(ConfigError, match="does not match the pinned public key"):
        load_signing_key(tmp_path)


def test_garbage_key_rejected(tmp_path: Path) -> None:
    key_path = tmp_path / "checkpoint.key"
    key_path.write_text("not a key")
    key_path.chmod(0o600)
    with pytest.raises(ConfigError, match="not a PEM private key"):
        load_signing_key(tmp_path)


def test_checkpoint_signs_newest_event(store: Store, tmp_path: Path) -> None:
    _record(store, 3)
    with store.session() as session:
        checkpoint = create_checkpoint(session, tmp_path)
    assert checkpoint is not None
    assert checkpoint.sequence == 3
    assert checkpoint_signature_valid(checkpoint)
    with store.session() as session:
        report = verify_chain(session, tmp_path)
    assert report.valid
    assert report.checkpoints_checked == 1
    assert report.warnings == []


def test_checkpoint_on_empty_log(store: Store, tmp_path: Path) -> None:
    with store.session() as session:
        assert create_checkpoint(session, tmp_path) is None


def test_checkpoint_not_repeated(store: Store, tmp_path: Path) -> None:
    _record(store, 2)
    with store.session() as session:
        first = create_checkpoint(session, tmp_path)
    with store.session() as session:
        second = create_checkpoint(session, tmp_path)
        count = session.scalar(select(func.count()).select_from(EventCheckpoint))
    assert first is not None
    assert second is not None
    assert second.id == first.id
    assert count == 1


def test_foreign_key_checkpoint_detected(store: Store, tmp_path: Path) -> None:
    _record(store, 2)
    forger_home = tmp_path / "forger"
    with store.session() as session:
        create_checkpoint(session, forger_home)
    owner_home = tmp_path / "owner"
    load_signing_key(owner_home)
    with store.session() as session:
        report = verify_chain(session, owner_home)
    first = report.first_problem
    assert first is not None
    assert first.kind == "checkpoint"
    assert "not the pinned checkpoint key" in first.message


def test_unpinned_verify_warns(store: Store, tmp_path: Path) -> None:
    _record(store, 1)
    with store.session() as session:
        create_checkpoint(session, tmp_path / "signer")
    with store.session() as session:
        report = verify_chain(session, tmp_path / "elsewhere")
    assert report.valid
    assert any("no pinned checkpoint key" in w for w in report.warnings)


def test_changed_checkpoint_detected(store: Store, tmp_path: Path) -> None:
    _record(store, 2)
    with store.session() as session:
        checkpoint = create_checkpoint(session, tmp_path)
        assert checkpoint is not None
        checkpoint_id = checkpoint.id
    with store.engine.begin() as connection:
        if connection.dialect.name == "postgresql":
            drop = "DROP TRIGGER event_checkpoints_append_only ON event_checkpoints"
            create = (
                "CREATE TRIGGER event_checkpoints_append_only BEFORE UPDATE OR "
                "DELETE ON event_checkpoints FOR EACH ROW EXECUTE FUNCTION "
                "keysteward_event_checkpoints_append_only()"
            )
        else:
            drop = "DROP TRIGGER event_checkpoints_no_update"
            create = (
                "CREATE TRIGGER event_checkpoints_no_update BEFORE UPDATE ON "
                "event_checkpoints BEGIN SELECT RAISE(ABORT, 'no'); END"
            )
        connection.execute(text(drop))
        connection.execute(
            text("UPDATE event_checkpoints SET sequence = 1 WHERE id = :id"),
            {"id": checkpoint_id},
        )
        connection.execute(text(create))
    with store.session() as session:
        report = verify_chain(session, tmp_path)
    first = report.first_problem
    assert first is not None
    assert first.kind == "checkpoint"
    assert "invalid signature" in first.message


def test_database_rejects_checkpoint_delete(store: Store, tmp_path: Path) -> None:
    _record(store, 1)
    with store.session() as session:
        create_checkpoint(session, tmp_path)
    with pytest.raises(Exception, match="append-only"), store.engine.begin() as conn:
        conn.execute(text("DELETE FROM event_checkpoints"))


def test_automatic_checkpoint_every_n(store: Store, tmp_path: Path) -> None:
    original_home = store.settings.home
    store.settings.home = tmp_path
    disable = enable_automatic_checkpoints(store, every=5)
    try:
        for _ in range(4):
            with store.session() as session:
                record_event(session, actor="a", action="x")
        with store.session() as session:
            before = session.scalar(select(func.count()).select_from(EventCheckpoint))
        with store.session() as session:
            record_events(session, [{"actor": "a", "action": "y"}] * 3)
        with store.session() as session:
            sequences = list(session.scalars(select(EventCheckpoint.sequence)))
    finally:
        disable()
        store.settings.home = original_home
    assert before == 0
    assert sequences == [7]


def test_automatic_checkpoint_skips_rollback(store: Store, tmp_path: Path) -> None:
    original_home = store.settings.home
    store.settings.home = tmp_path
    disable = enable_automatic_checkpoints(store, every=1)
    try:
        with pytest.raises(RuntimeError), store.session() as session:
            record_event(session, actor="a", action="x")
            session.flush()
            raise RuntimeError("abort")
        with store.session() as session:
            count = session.scalar(select(func.count()).select_from(EventCheckpoint))
    finally:
        disable()
        store.settings.home = original_home
    assert count == 0
