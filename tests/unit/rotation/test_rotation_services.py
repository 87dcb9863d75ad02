"""The rotation state machine on both store backends."""

from datetime import timedelta

import pytest
from sqlalchemy import select
from sqlalchemy.exc import IntegrityError

from common import rotation_plugins
from common.rotation_setup import (
    ACTOR,
    add_api_token_secret,
    add_rotatable_secret,
)
from keysteward.clock import as_utc, utcnow
from keysteward.credentials.models import Credential, CredentialKind
from keysteward.db import Store
from keysteward.events.models import Event
from keysteward.rotation.errors import RotationRejectedError, RotatorNotFoundError
from keysteward.rotation.models import Rotation, RotationState
from keysteward.rotation.queries import list_rotations
from keysteward.rotation.services import (
    queue_rotation,
    resume_rotations,
    rotate_secret,
)
from keysteward.tokens.errors import AuthenticationError
from keysteward.tokens.services import authenticate_api_token
from keysteward.vault.keys import KeyRing
from keysteward.vault.services import (
    find_version,
    list_versions,
    read_secret_as_operator,
)

FORWARD_STATES = [
    "requested",
    "pending_created",
    "applied",
    "verified",
    "promoted",
    "grace",
    "old_revoked",
    "done",
]


def _value(store: Store, keyring: KeyRing, name: str) -> bytes:
    with store.session() as session:
        return read_secret_as_operator(session, keyring, name, actor=ACTOR).value


def _statuses(store: Store, name: str) -> list[tuple[int, str]]:
    with store.session() as session:
        return [(row["version"], row["status"]) for row in list_versions(session, name)]


def _authenticates(store: Store, token: bytes) -> bool:
    try:
        with store.session() as session:
            authenticate_api_token(session, token.decode())
    except AuthenticationError:
        return False
    return True


def _rotation_actions(store: Store, name: str) -> list[str]:
    with store.session() as session:
        return list(
            session.scalars(
                select(Event.action)
                .where(Event.target_id == name, Event.action.like("rotation.%"))
                .order_by(Event.sequence)
            )
        )


class TestApiTokenRotation:
    def test_rotation_waits_out_grace(self, store: Store, keyring: KeyRing) -> None:
        add_api_token_secret(store, keyring, "bot-token", grace_hours=24)
        old = _value(store, keyring, "bot-token")

        result = rotate_secret(store, keyring, "bot-token", actor=ACTOR)

        assert result.state == RotationState.GRACE
        new = _value(store, keyring, "bot-token")
        assert new != old
        assert _authenticates(store, new)
        assert _authenticates(store, old)
        assert _statuses(store, "bot-token") == [(1, "previous"), (2, "current")]

    def test_rotation_revokes_old_after_grace(
        self, store: Store, keyring: KeyRing
    ) -> None:
        add_api_token_secret(store, keyring, "bot-token", grace_hours=24)
        old = _value(store, keyring, "bot-token")
        rotate_secret(store, keyring, "bot-token", actor=ACTOR)

        results = resume_rotations(
            store, keyring, actor=ACTOR, now=utcnow() + timedelta(hours=25)
        )

        assert [result.state for result in results] == ["done"]
        assert not _authenticates(store, old)
        assert _authenticates(store, _value(store, keyring, "bot-token"))
        assert _statuses(store, "bot-token") == [(1, "retired"), (2, "current")]

    def test_every_step_is_an_event(self, store: Store, keyring: KeyRing) -> None:
        add_api_token_secret(store, keyring, "bot-token", grace_hours=0)

        rotate_secret(store, keyring, "bot-token", actor=ACTOR)

        expected = [f"rotation.{state}" for state in FORWARD_STATES]
        assert _rotation_actions(store, "bot-token") == expected

    def test_new_token_keeps_old_roles(self, store: Store, keyring: KeyRing) -> None:
        add_api_token_secret(store, keyring, "bot-token", grace_hours=0)
        rotate_secret(store, keyring, "bot-token", actor=ACTOR)

        with store.session() as session:
            principal, record = authenticate_api_token(
                session, _value(store, keyring, "bot-token").decode()
            )

        assert principal.name == "svc-bot-token"
        assert record.revoked_at is None


class TestRequests:
    def test_person_password_rejected(self, store: Store, keyring: KeyRing) -> None:
        credential_id = add_rotatable_secret(
            store,
            keyring,
            "alice-vpn",
            b"hunter-" + b"x" * 8,
            {"rotator": "manual"},
            kind=CredentialKind.PASSWORD,
            held_by_person=True,
        )

        with pytest.raises(RotationRejectedError, match="person's password"):
            rotate_secret(store, keyring, "alice-vpn", actor=ACTOR)
        with store.session() as session, pytest.raises(RotationRejectedError):
            queue_rotation(
                session, credential_id=credential_id, reason="offboarding", actor=ACTOR
            )
        with store.session() as session:
            assert session.scalar(select(Rotation)) is None

    def test_missing_rotator_rejected(self, store: Store, keyring: KeyRing) -> None:
        add_rotatable_secret(store, keyring, "no-rotator", b"v" * 12, {})

        with pytest.raises(RotationRejectedError, match='set "rotator"'):
            rotate_secret(store, keyring, "no-rotator", actor=ACTOR)

    def test_unknown_rotator_rejected(self, store: Store, keyring: KeyRing) -> None:
        add_rotatable_secret(store, keyring, "odd", b"v" * 12, {"rotator": "ldap"})

        with pytest.raises(RotatorNotFoundError, match="'ldap' not found"):
            rotate_secret(store, keyring, "odd", actor=ACTOR)

    def test_queue_twice_gives_one_rotation(
        self, store: Store, keyring: KeyRing
    ) -> None:
        credential_id = add_api_token_secret(store, keyring, "bot-token")

        with store.session() as session:
            first = queue_rotation(
                session, credential_id=credential_id, reason="offboarding", actor=ACTOR
            ).id
        with store.session() as session:
            second = queue_rotation(
                session, secret_name="bot-token", reason="operator", actor=ACTOR
            ).id

        assert first == second
        with store.session() as session:
            assert len(list_rotations(session)) == 1

    def test_long_reason_rejected(self, store: Store, keyring: KeyRing) -> None:
        add_api_token_secret(store, keyring, "bot-token")

        with store.session() as session, pytest.raises(RotationRejectedError):
            queue_rotation(
                session, secret_name="bot-token", reason="x" * 501, actor=ACTOR
            )
        with store.session() as session:
            kept = queue_rotation(
                session, secret_name="bot-token", reason="y" * 500, actor=ACTOR
            )
            assert kept.reason == "y" * 500

    def test_index_allows_one_active_rotation(
        self, store: Store, keyring: KeyRing
    ) -> None:
        add_api_token_secret(store, keyring, "bot-token")
        with store.session() as session:
            rotation = queue_rotation(
                session, secret_name="bot-token", reason="operator", actor=ACTOR
            )
            secret_id = rotation.secret_id

        with pytest.raises(IntegrityError), store.session() as session:
            session.add(
                Rotation(
                    secret_id=secret_id,
                    rotator="api_token",
                    reason="operator",
                    requested_by=ACTOR,
                    details={},
                )
            )

    def test_credential_id_names_secret(self, store: Store, keyring: KeyRing) -> None:
        credential_id = add_api_token_secret(store, keyring, "bot-token", grace_hours=0)

        result = rotate_secret(store, keyring, str(credential_id), actor=ACTOR)

        assert result.secret == "bot-token"
        assert result.state == RotationState.DONE


class TestRollback:
    def test_failed_verify_rolls_back(
        self, store: Store, keyring: KeyRing, in_memory_rotator: str
    ) -> None:
        original = b"orig-" + b"z" * 10
        credential_id = add_rotatable_secret(
            store,
            keyring,
            "fake-db",
            original,
            {"rotator": in_memory_rotator, "original": original.decode()},
        )
        rotation_plugins.VALID["fake-db"] = {original}
        rotation_plugins.FAIL_VERIFY.add("fake-db")
        with store.session() as session:
            before = session.get_one(Credential, credential_id)
            fingerprint = before.fingerprint
            rotated_at = as_utc(before.last_rotated_at)

        result = rotate_secret(store, keyring, "fake-db", actor=ACTOR)

        assert result.state == RotationState.ROLLED_BACK
        assert "does not authenticate" in (result.last_error or "")
        assert rotation_plugins.VALID["fake-db"] == {original}
        assert _value(store, keyring, "fake-db") == original
        assert _statuses(store, "fake-db") == [(1, "current"), (2, "retired")]
        with store.session() as session:
            after = session.get_one(Credential, credential_id)
            assert after.fingerprint == fingerprint
            assert as_utc(after.last_rotated_at) == rotated_at
        actions = _rotation_actions(store, "fake-db")
        assert actions[-3:] == [
            "rotation.step_failed",
            "rotation.rolling_back",
            "rotation.rolled_back",
        ]

    def test_rotation_after_rollback_starts_fresh(
        self, store: Store, keyring: KeyRing, in_memory_rotator: str
    ) -> None:
        original = b"orig-" + b"q" * 10
        add_rotatable_secret(
            store,
            keyring,
            "fake-db",
            original,
            {"rotator": in_memory_rotator, "original": original.decode()},
        )
        rotation_plugins.VALID["fake-db"] = {original}
        rotation_plugins.FAIL_VERIFY.add("fake-db")
        rotate_secret(store, keyring, "fake-db", actor=ACTOR)
        rotation_plugins.FAIL_VERIFY.clear()

        result = rotate_secret(store, keyring, "fake-db", actor=ACTOR)

        assert result.state == RotationState.DONE
        new = _value(store, keyring, "fake-db")
        assert rotation_plugins.VALID["fake-db"] == {new}
        with store.session() as session:
            assert find_version(session, "fake-db", None).version == 3
