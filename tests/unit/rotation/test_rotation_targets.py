"""The PostgreSQL and Redis rotators against the real local servers."""

from datetime import timedelta

import psycopg
import pytest

from common.rotation_setup import (
    ACTOR,
    POSTGRES_ADMIN_DSN,
    add_rotatable_secret,
    postgres_attributes,
    postgres_password_is_set,
    postgres_role,
    redis_attributes,
    redis_password_works,
    redis_user,
    store_admin_secrets,
)
from keysteward.clock import utcnow
from keysteward.db import Store
from keysteward.rotation.errors import RotationRejectedError
from keysteward.rotation.models import Rotation, RotationState
from keysteward.rotation.rotators.postgres import password_matches_verifier
from keysteward.rotation.services import (
    abandon_rotation,
    resume_rotations,
    rotate_secret,
)
from keysteward.vault.keys import KeyRing
from keysteward.vault.services import list_versions, read_secret_as_operator


def _current(store: Store, keyring: KeyRing, name: str) -> str:
    with store.session() as session:
        return read_secret_as_operator(
            session, keyring, name, actor=ACTOR
        ).value.decode()


class TestPasswordVerifier:
    def test_scram_verifier_matches(self) -> None:
        with psycopg.connect(POSTGRES_ADMIN_DSN) as connection:
            stored = connection.pgconn.encrypt_password(
                b"right-horse", b"alice", b"scram-sha-256"
            ).decode()

        assert password_matches_verifier(b"right-horse", "alice", stored)
        assert not password_matches_verifier(b"wrong-horse", "alice", stored)

    def test_md5_verifier_matches(self) -> None:
        # md5("secret" || "alice"), the legacy form PostgreSQL stores.
        stored = "md5" + "4a0a68b43b6cd5cf266fa02f196e2371"

        assert password_matches_verifier(b"secret", "alice", stored)
        assert not password_matches_verifier(b"wrong", "alice", stored)

    def test_unknown_format_never_matches(self) -> None:
        assert not password_matches_verifier(b"anything", "alice", "plain")

    def test_malformed_scram_never_matches(self) -> None:
        assert not password_matches_verifier(b"x", "alice", "SCRAM-SHA-256$oops")


class TestPostgresRotator:
    def test_rotation_changes_role_password(
        self, sqlite_store: Store, keyring: KeyRing
    ) -> None:
        store_admin_secrets(sqlite_store, keyring)
        with postgres_role() as role:
            add_rotatable_secret(
                sqlite_store,
                keyring,
                "app-reader",
                role.password.encode(),
                postgres_attributes(role.name),
            )

            result = rotate_secret(sqlite_store, keyring, "app-reader", actor=ACTOR)

            new = _current(sqlite_store, keyring, "app-reader")
            assert result.state == RotationState.DONE
            assert new != role.password
            assert postgres_password_is_set(role.name, new)
            assert not postgres_password_is_set(role.name, role.password)

    def test_missing_role_fails_cleanly(
        self, sqlite_store: Store, keyring: KeyRing
    ) -> None:
        store_admin_secrets(sqlite_store, keyring)
        add_rotatable_secret(
            sqlite_store,
            keyring,
            "ghost",
            b"old-" + b"p" * 12,
            postgres_attributes("ks_rot_no_such_role"),
        )

        result = rotate_secret(sqlite_store, keyring, "ghost", actor=ACTOR)

        # Putting the old password back fails too, so the rotation waits in
        # rolling_back with the old value still current in the vault.
        assert result.state == RotationState.ROLLING_BACK
        assert "does not exist" in (result.last_error or "")
        assert _current(sqlite_store, keyring, "ghost") == "old-" + "p" * 12


class TestRedisRotator:
    def test_old_password_valid_during_grace(
        self, sqlite_store: Store, keyring: KeyRing
    ) -> None:
        store_admin_secrets(sqlite_store, keyring)
        with redis_user() as user:
            add_rotatable_secret(
                sqlite_store,
                keyring,
                "cache",
                user.password.encode(),
                redis_attributes(user.name, grace_hours=1),
            )

            parked = rotate_secret(sqlite_store, keyring, "cache", actor=ACTOR)
            new = _current(sqlite_store, keyring, "cache")
            both_work = redis_password_works(
                user.name, user.password
            ) and redis_password_works(user.name, new)
            later = utcnow() + timedelta(hours=2)
            finished = resume_rotations(sqlite_store, keyring, actor=ACTOR, now=later)

            assert parked.state == RotationState.GRACE
            assert both_work
            assert [result.state for result in finished] == ["done"]
            assert redis_password_works(user.name, new)
            assert not redis_password_works(user.name, user.password)

    def test_missing_user_fails_cleanly(
        self, sqlite_store: Store, keyring: KeyRing
    ) -> None:
        store_admin_secrets(sqlite_store, keyring)
        add_rotatable_secret(
            sqlite_store,
            keyring,
            "cache",
            b"old-" + b"r" * 12,
            redis_attributes("ks_rot_no_such_user"),
        )

        result = rotate_secret(sqlite_store, keyring, "cache", actor=ACTOR)

        assert result.state == RotationState.ROLLING_BACK
        assert "not found" in (result.last_error or "")
        assert _current(sqlite_store, keyring, "cache") == "old-" + "r" * 12

    def test_abandon_keeps_vault_versions(
        self, sqlite_store: Store, keyring: KeyRing
    ) -> None:
        store_admin_secrets(sqlite_store, keyring)
        add_rotatable_secret(
            sqlite_store,
            keyring,
            "cache",
            b"old-" + b"s" * 12,
            redis_attributes("ks_rot_no_such_user"),
        )
        stuck = rotate_secret(sqlite_store, keyring, "cache", actor=ACTOR)

        with sqlite_store.session() as session:
            abandon_rotation(session, stuck.rotation_id, actor=ACTOR)

        with sqlite_store.session() as session:
            rotation = session.get_one(Rotation, stuck.rotation_id)
            assert rotation.state == RotationState.FAILED
            statuses = [row["status"] for row in list_versions(session, "cache")]
        assert statuses == ["current", "pending"]
        with sqlite_store.session() as session, pytest.raises(RotationRejectedError):
            abandon_rotation(session, stuck.rotation_id, actor=ACTOR)
