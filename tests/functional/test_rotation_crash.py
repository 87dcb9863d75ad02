"""Kill a rotation process at every step, then resume it.

Each case runs a real rotation against the local PostgreSQL or Redis server
in a child process that SIGKILLs itself at one checkpoint. Right after the
kill, the value that works on the target must be in the vault (current or
pending). After ``resume_rotations`` the rotation must be done with only
the new value working, or rolled back with the old value working.
"""

import os
import signal
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import psycopg
import pytest
from psycopg import sql
from sqlalchemy import select

from common.rotation_setup import (
    ACTOR,
    POSTGRES_ADMIN_DSN,
    add_rotatable_secret,
    keyring_for,
    postgres_attributes,
    postgres_password_is_set,
    postgres_role,
    random_master_key,
    random_password,
    redis_attributes,
    redis_password_works,
    redis_user,
    store_admin_secrets,
)
from keysteward.db import Store
from keysteward.rotation.models import Rotation, RotationState
from keysteward.rotation.services import resume_rotations
from keysteward.vault.keys import KeyRing
from keysteward.vault.models import Secret, SecretVersion, VersionStatus
from keysteward.vault.services import decrypt_version

TESTS_DIR = Path(__file__).resolve().parents[1]
STEP_STATES = [
    "requested",
    "pending_created",
    "applied",
    "verified",
    "promoted",
    "grace",
    "old_revoked",
]
# A kill before each step's action finds the previous step committed. A kill
# after the action, before the commit, differs from that only where the
# action changed the target: apply (pending_created) and revoke (grace). The
# other actions write to the store inside the step's own transaction, so a
# kill after them leaves the same state as a kill before them.
CHECKPOINTS = [f"before:{state}" for state in STEP_STATES] + [
    "after:pending_created",
    "after:grace",
]


def _run_child(store: Store, master_key: str, home: Path, secret: str, kill_at: str):
    env = {
        **os.environ,
        "KEYSTEWARD_DATABASE_URL": store.settings.resolved_database_url,
        "KEYSTEWARD_HOME": str(home),
        "KEYSTEWARD_KEY_PROVIDER": "env",
        "KEYSTEWARD_MASTER_KEY": master_key,
        "PYTHONPATH": str(TESTS_DIR),
    }
    return subprocess.run(
        [sys.executable, "-m", "common.rotation_child", secret, kill_at],
        env=env,
        cwd=TESTS_DIR,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


def _vault_values(store: Store, keyring: KeyRing, name: str) -> dict[str, str]:
    """Return the readable values of secret ``name`` by status."""
    with store.session() as session:
        secret = session.scalar(select(Secret).where(Secret.name == name))
        assert secret is not None
        rows = session.scalars(
            select(SecretVersion).where(
                SecretVersion.secret_id == secret.id,
                SecretVersion.status != VersionStatus.RETIRED,
            )
        )
        return {
            row.status: decrypt_version(session, keyring, row).decode() for row in rows
        }


def _rotation_state(store: Store) -> str:
    with store.session() as session:
        return session.scalars(select(Rotation.state)).one()


def _check_kill_and_resume(
    store: Store,
    tmp_path: Path,
    kill_at: str,
    name: str,
    old: str,
    works: Callable[[str], bool],
) -> None:
    master_key = os.environ["ROTATION_TEST_MASTER_KEY"]
    keyring = keyring_for(master_key)

    child = _run_child(store, master_key, tmp_path / "child-home", name, kill_at)

    assert child.returncode == -signal.SIGKILL, child.stderr
    in_vault = _vault_values(store, keyring, name)
    working = [value for value in in_vault.values() if works(value)]
    assert working, f"no vaulted value works on the target after kill at {kill_at}"

    resume_rotations(store, keyring, actor=ACTOR)

    assert _rotation_state(store) == RotationState.DONE
    current = _vault_values(store, keyring, name)["current"]
    assert current != old
    assert works(current)
    assert not works(old)


@pytest.fixture
def master_key(monkeypatch: pytest.MonkeyPatch) -> str:
    key = random_master_key()
    monkeypatch.setenv("ROTATION_TEST_MASTER_KEY", key)
    return key


@pytest.mark.parametrize("store", ["postgresql"], indirect=True)
@pytest.mark.parametrize("kill_at", CHECKPOINTS)
def test_postgres_rotation_survives_kill(
    store: Store, master_key: str, tmp_path: Path, kill_at: str
) -> None:
    keyring = keyring_for(master_key)
    store_admin_secrets(store, keyring)
    with postgres_role() as role:
        add_rotatable_secret(
            store,
            keyring,
            "app-reader",
            role.password.encode(),
            postgres_attributes(role.name),
        )

        _check_kill_and_resume(
            store,
            tmp_path,
            kill_at,
            "app-reader",
            role.password,
            lambda value: postgres_password_is_set(role.name, value),
        )


@pytest.mark.parametrize("store", ["postgresql"], indirect=True)
@pytest.mark.parametrize("kill_at", CHECKPOINTS)
def test_redis_rotation_survives_kill(
    store: Store, master_key: str, tmp_path: Path, kill_at: str
) -> None:
    keyring = keyring_for(master_key)
    store_admin_secrets(store, keyring)
    with redis_user() as user:
        add_rotatable_secret(
            store,
            keyring,
            "cache",
            user.password.encode(),
            redis_attributes(user.name, grace_hours=0),
        )

        _check_kill_and_resume(
            store,
            tmp_path,
            kill_at,
            "cache",
            user.password,
            lambda value: redis_password_works(user.name, value),
        )


def _set_role_password(role: str, password: str) -> None:
    with psycopg.connect(POSTGRES_ADMIN_DSN, autocommit=True) as admin:
        verifier = admin.pgconn.encrypt_password(
            password.encode(), role.encode(), b"scram-sha-256"
        )
        admin.execute(
            sql.SQL("ALTER ROLE {} PASSWORD {}").format(
                sql.Identifier(role), sql.Literal(verifier.decode())
            )
        )


@pytest.mark.parametrize("store", ["postgresql"], indirect=True)
@pytest.mark.parametrize("kill_at", ["before:rolling_back", "after:rolling_back"])
def test_postgres_rollback_survives_kill(
    store: Store, master_key: str, tmp_path: Path, kill_at: str
) -> None:
    keyring = keyring_for(master_key)
    store_admin_secrets(store, keyring)
    home = tmp_path / "child-home"
    with postgres_role() as role:
        add_rotatable_secret(
            store,
            keyring,
            "app-reader",
            role.password.encode(),
            postgres_attributes(role.name),
        )
        first = _run_child(store, master_key, home, "app-reader", "before:applied")
        # Someone changes the password by hand after keysteward applied its
        # new one, so verification fails and the rotation must roll back.
        _set_role_password(role.name, random_password())

        second = _run_child(store, master_key, home, "app-reader", kill_at)
        resume_rotations(store, keyring, actor=ACTOR)

        assert first.returncode == -signal.SIGKILL, first.stderr
        assert second.returncode == -signal.SIGKILL, second.stderr
        assert _rotation_state(store) == RotationState.ROLLED_BACK
        in_vault = _vault_values(store, keyring, "app-reader")
        assert in_vault == {"current": role.password}
        assert postgres_password_is_set(role.name, role.password)
