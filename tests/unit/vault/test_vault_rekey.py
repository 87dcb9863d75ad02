"""Rekey: rewrap under a new KEK, interrupted midway and resumed."""

import os
import subprocess
import sys
from pathlib import Path

import pytest
from sqlalchemy import select

from keysteward.db import Store
from keysteward.vault.keys import KeyRing
from keysteward.vault.models import KekStatus, KeyEncryptionKey, SecretVersion
from keysteward.vault.rekey import rekey
from keysteward.vault.services import put_secret, read_secret_as_operator

VALUES = {f"secret-{index}": f"value number {index}".encode() for index in range(7)}


class SimulatedCrash(Exception):
    pass


def _fill(store: Store, keyring: KeyRing) -> None:
    with store.session() as session:
        for name, value in VALUES.items():
            put_secret(session, keyring, name, value, actor="t")


def _assert_all_decrypt(store: Store, keyring: KeyRing) -> None:
    # A fresh key ring has no cached KEKs, so it unwraps them from the store.
    fresh = KeyRing(keyring.provider)
    with store.session() as session:
        for name, value in VALUES.items():
            assert (
                read_secret_as_operator(session, fresh, name, actor="t").value == value
            )


def _kek_ids_in_use(store: Store) -> set[int]:
    with store.session() as session:
        return set(session.scalars(select(SecretVersion.kek_id)))


def _kek(store: Store, kek_id: int) -> KeyEncryptionKey:
    with store.session() as session:
        return session.get_one(KeyEncryptionKey, kek_id)


def test_rekey_moves_every_row(store: Store, keyring: KeyRing) -> None:
    _fill(store, keyring)
    (old_kek,) = _kek_ids_in_use(store)
    result = rekey(store, keyring, actor="t", batch_size=3)
    assert result.rewrapped == len(VALUES)
    assert result.retired_kek_ids == [old_kek]
    assert _kek_ids_in_use(store) == {result.kek_id}
    retired = _kek(store, old_kek)
    assert retired.status == KekStatus.RETIRED
    assert retired.wrapped_key is None
    _assert_all_decrypt(store, keyring)


def test_rekey_keeps_payload_ciphertext(store: Store, keyring: KeyRing) -> None:
    _fill(store, keyring)
    with store.session() as session:
        before = dict(
            (row.id, row.ciphertext) for row in session.scalars(select(SecretVersion))
        )
    rekey(store, keyring, actor="t")
    with store.session() as session:
        after = dict(
            (row.id, row.ciphertext) for row in session.scalars(select(SecretVersion))
        )
    assert after == before


def test_rekey_interrupted_then_resumed(store: Store, keyring: KeyRing) -> None:
    _fill(store, keyring)
    (old_kek,) = _kek_ids_in_use(store)
    rows_seen = []

    def crash_in_second_batch(row: SecretVersion) -> None:
        rows_seen.append(row.id)
        if len(rows_seen) == 5:
            raise SimulatedCrash

    with pytest.raises(SimulatedCrash):
        rekey(store, keyring, actor="t", batch_size=3, after_row=crash_in_second_batch)

    # The first batch of 3 is committed; the batch that crashed is rolled back.
    with store.session() as session:
        kek_ids = list(session.scalars(select(SecretVersion.kek_id)))
    new_kek = max(kek_ids)
    assert kek_ids.count(new_kek) == 3
    assert kek_ids.count(old_kek) == 4
    interrupted = _kek(store, old_kek)
    assert interrupted.status == KekStatus.RETIRING
    assert interrupted.wrapped_key is not None
    _assert_all_decrypt(store, keyring)

    # A value stored while the rekey is unfinished uses the new KEK.
    with store.session() as session:
        row = put_secret(session, keyring, "added-midway", b"late", actor="t")
        assert row.kek_id == new_kek

    result = rekey(store, keyring, actor="t", batch_size=3)
    assert result.resumed is True
    assert result.kek_id == new_kek
    assert result.rewrapped == 4
    assert _kek_ids_in_use(store) == {new_kek}
    finished = _kek(store, old_kek)
    assert finished.status == KekStatus.RETIRED
    assert finished.wrapped_key is None
    _assert_all_decrypt(store, keyring)


def test_rekey_twice_retires_both(store: Store, keyring: KeyRing) -> None:
    _fill(store, keyring)
    first = rekey(store, keyring, actor="t")
    second = rekey(store, keyring, actor="t")
    assert second.resumed is False
    assert second.retired_kek_ids == [first.kek_id]
    _assert_all_decrypt(store, keyring)


CRASHING_REKEY = """
import os, sys
from keysteward.config import Settings
from keysteward.crypto.keyring import EnvironmentKeyProvider
from keysteward.db import open_store
from keysteward.vault.keys import KeyRing
from keysteward.vault.rekey import rekey

store = open_store(Settings(home=sys.argv[1], database_url=sys.argv[2]))
keyring = KeyRing(EnvironmentKeyProvider(dict(os.environ)))
rows = []

def die_in_second_batch(row):
    rows.append(row.id)
    if len(rows) == 5:
        os._exit(9)  # no rollback, no cleanup: as if the process were killed

rekey(store, keyring, actor="t", batch_size=3, after_row=die_in_second_batch)
"""


def test_rekey_resumes_after_killed_process(
    store: Store, keyring: KeyRing, tmp_path: Path
) -> None:
    _fill(store, keyring)
    (old_kek,) = _kek_ids_in_use(store)
    provider_environ = keyring.provider.environ  # type: ignore[attr-defined]
    completed = subprocess.run(
        [
            sys.executable,
            "-c",
            CRASHING_REKEY,
            str(tmp_path),
            store.settings.resolved_database_url,
        ],
        env={**os.environ, **provider_environ},
        check=False,
        timeout=60,
    )
    assert completed.returncode == 9
    assert len(_kek_ids_in_use(store)) == 2
    assert _kek(store, old_kek).status == KekStatus.RETIRING
    _assert_all_decrypt(store, keyring)

    result = rekey(store, keyring, actor="t", batch_size=3)
    assert result.resumed is True
    assert result.rewrapped == 4
    assert _kek_ids_in_use(store) == {result.kek_id}
    assert _kek(store, old_kek).status == KekStatus.RETIRED
    _assert_all_decrypt(store, keyring)
