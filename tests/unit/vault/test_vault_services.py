"""Secrets in the store: versions, envelope binding, read events."""

from collections.abc import Iterator
from contextlib import contextmanager

import pytest
from sqlalchemy import select, text, update
from sqlalchemy.exc import DBAPIError

from keysteward.credentials.models import Credential
from keysteward.credentials.services import fingerprint_secret
from keysteward.crypto.aead import DecryptionError
from keysteward.db import Store
from keysteward.events.models import Event
from keysteward.vault.errors import InvalidSecretError, SecretNotFoundError
from keysteward.vault.keys import KeyRing
from keysteward.vault.models import SecretVersion
from keysteward.vault.services import (
    SecretMetadata,
    decrypt_version,
    find_version,
    list_versions,
    promote_version,
    put_secret,
    read_secret,
    read_secret_as_operator,
    retire_version,
    verify_all_versions,
)

HUBSPOT_VALUE = ("pat-na1-" + "1a2b3c4d" * 4).encode()


def _put(store: Store, keyring: KeyRing, name: str, value: bytes) -> int:
    with store.session() as session:
        return put_secret(session, keyring, name, value, actor="operator:test").version


def _read(
    store: Store, keyring: KeyRing, name: str, version: int | None = None
) -> bytes:
    with store.session() as session:
        return read_secret_as_operator(
            session, keyring, name, actor="operator:test", version=version
        ).value


class TestPutSecret:
    def test_round_trip(self, store: Store, keyring: KeyRing) -> None:
        _put(store, keyring, "hubspot", HUBSPOT_VALUE)
        assert _read(store, keyring, "hubspot") == HUBSPOT_VALUE

    def test_ciphertext_is_not_plaintext(self, store: Store, keyring: KeyRing) -> None:
        _put(store, keyring, "hubspot", HUBSPOT_VALUE)
        with store.session() as session:
            row = session.scalars(select(SecretVersion)).one()
            assert HUBSPOT_VALUE not in row.ciphertext
            assert HUBSPOT_VALUE not in row.wrapped_key

    def test_new_version_demotes_current(self, store: Store, keyring: KeyRing) -> None:
        _put(store, keyring, "hubspot", b"first")
        _put(store, keyring, "hubspot", b"second")
        _put(store, keyring, "hubspot", b"third")
        with store.session() as session:
            statuses = {
                v["version"]: v["status"] for v in list_versions(session, "hubspot")
            }
        assert statuses == {1: "previous", 2: "previous", 3: "current"}
        assert _read(store, keyring, "hubspot") == b"third"
        assert _read(store, keyring, "hubspot", version=1) == b"first"

    def test_pending_keeps_current(self, store: Store, keyring: KeyRing) -> None:
        _put(store, keyring, "hubspot", b"live")
        with store.session() as session:
            put_secret(session, keyring, "hubspot", b"next", actor="t", pending=True)
        assert _read(store, keyring, "hubspot") == b"live"
        with store.session() as session:
            promote_version(session, "hubspot", 2, actor="t")
        assert _read(store, keyring, "hubspot") == b"next"

    @pytest.mark.parametrize(
        "name", ["", "has space", "../etc", "-leading", "a/b", "trailing-newline\n"]
    )
    def test_invalid_name_rejected(
        self, store: Store, keyring: KeyRing, name: str
    ) -> None:
        with pytest.raises(InvalidSecretError, match="invalid secret name"):
            _put(store, keyring, name, b"value")

    def test_empty_value_rejected(self, store: Store, keyring: KeyRing) -> None:
        with pytest.raises(InvalidSecretError, match="empty value"):
            _put(store, keyring, "hubspot", b"")

    def test_linked_credential_gets_fingerprint(
        self, store: Store, keyring: KeyRing
    ) -> None:
        with store.session() as session:
            credential = Credential(name="HubSpot key", source="sheet", source_id="h1")
            session.add(credential)
            session.flush()
            put_secret(
                session,
                keyring,
                "hubspot",
                HUBSPOT_VALUE,
                actor="t",
                metadata=SecretMetadata(credential_id=credential.id, rotation_days=90),
            )
            expected = fingerprint_secret(session, HUBSPOT_VALUE)
            assert credential.fingerprint == expected
            assert credential.last_rotated_at is not None


class TestTamperResistance:
    def test_tampered_ciphertext_fails(self, store: Store, keyring: KeyRing) -> None:
        _put(store, keyring, "hubspot", HUBSPOT_VALUE)
        with store.session() as session:
            row = session.scalars(select(SecretVersion)).one()
            damaged = bytearray(row.ciphertext)
            damaged[-1] ^= 0x01
            row.ciphertext = bytes(damaged)
        with pytest.raises(DecryptionError):
            _read(store, keyring, "hubspot")

    def test_swapped_ciphertext_fails(self, store: Store, keyring: KeyRing) -> None:
        _put(store, keyring, "hubspot", b"hubspot value")
        _put(store, keyring, "slack", b"slack value")
        with store.session() as session:
            hubspot, slack = session.scalars(
                select(SecretVersion).order_by(SecretVersion.id)
            ).all()
            hubspot_sealed = (hubspot.ciphertext, hubspot.wrapped_key)
            session.execute(
                update(SecretVersion)
                .where(SecretVersion.id == slack.id)
                .values(ciphertext=hubspot_sealed[0], wrapped_key=hubspot_sealed[1])
            )
        with pytest.raises(DecryptionError):
            _read(store, keyring, "slack")
        assert _read(store, keyring, "hubspot") == b"hubspot value"

    def test_moved_version_number_fails(self, store: Store, keyring: KeyRing) -> None:
        _put(store, keyring, "hubspot", b"one")
        _put(store, keyring, "hubspot", b"two")
        with store.session() as session:
            first = find_version(session, "hubspot", 1)
            second = find_version(session, "hubspot", 2)
            first.ciphertext, first.wrapped_key = second.ciphertext, second.wrapped_key
        with pytest.raises(DecryptionError):
            _read(store, keyring, "hubspot", version=1)

    def test_wrong_master_key_fails(
        self, store: Store, keyring: KeyRing, other_keyring: KeyRing
    ) -> None:
        _put(store, keyring, "hubspot", HUBSPOT_VALUE)
        with pytest.raises(DecryptionError), store.session() as session:
            row = find_version(session, "hubspot", None)
            decrypt_version(session, other_keyring, row)


class TestRetire:
    def test_retired_version_unreadable(self, store: Store, keyring: KeyRing) -> None:
        _put(store, keyring, "hubspot", b"old")
        _put(store, keyring, "hubspot", b"new")
        with store.session() as session:
            retire_version(session, "hubspot", 1, actor="t")
        with pytest.raises(SecretNotFoundError, match="retired"):
            _read(store, keyring, "hubspot", version=1)
        with store.session() as session:
            assert find_version(session, "hubspot", 2).status == "current"
            assert verify_all_versions(session, keyring) == 1

    def test_current_version_not_retirable(
        self, store: Store, keyring: KeyRing
    ) -> None:
        _put(store, keyring, "hubspot", b"only")
        with (
            pytest.raises(InvalidSecretError, match="is current"),
            store.session() as session,
        ):
            retire_version(session, "hubspot", 1, actor="t")
        assert _read(store, keyring, "hubspot") == b"only"


class TestReadSecret:
    def test_allowed_read_recorded(
        self, store: Store, keyring: KeyRing, make_account
    ) -> None:
        principal = make_account("crm-sync", "keysteward:secrets/hubspot:read")
        _put(store, keyring, "hubspot", HUBSPOT_VALUE)
        with store.session() as session:
            read = read_secret(
                session, keyring, principal, "hubspot", source="10.0.0.5", via="api"
            )
        assert read.secret is not None
        assert read.secret.value == HUBSPOT_VALUE
        with store.session() as session:
            event = session.scalars(
                select(Event).where(Event.action == "secret.read")
            ).one()
        assert event.actor == "service_account:crm-sync"
        assert event.outcome == "allowed"
        assert event.target_id == "hubspot"
        assert event.source_address == "10.0.0.5"
        assert event.details["version"] == 1

    def test_denied_read_recorded(
        self, store: Store, keyring: KeyRing, make_account
    ) -> None:
        principal = make_account("crm-sync", "keysteward:secrets/slack:read")
        _put(store, keyring, "hubspot", HUBSPOT_VALUE)
        with store.session() as session:
            read = read_secret(session, keyring, principal, "hubspot")
        assert read.secret is None
        assert not read.decision
        with store.session() as session:
            event = session.scalars(
                select(Event).where(Event.action == "secret.read")
            ).one()
        assert event.outcome == "denied"
        assert "version" not in event.details

    @pytest.mark.parametrize(
        "name", ["client-secret", "stripe-live-key-2026-prod-eu-west-1-backup"]
    )
    def test_secret_like_names_readable(
        self, store: Store, keyring: KeyRing, make_account, name: str
    ) -> None:
        principal = make_account("crm-sync", "keysteward:secrets/*:read")
        _put(store, keyring, name, HUBSPOT_VALUE)
        with store.session() as session:
            read = read_secret(session, keyring, principal, name)
        assert read.secret is not None
        assert read.secret.value == HUBSPOT_VALUE

    def test_read_fails_when_event_fails(
        self, store: Store, keyring: KeyRing, make_account
    ) -> None:
        principal = make_account("crm-sync", "keysteward:secrets/*:read")
        _put(store, keyring, "hubspot", HUBSPOT_VALUE)
        results = []
        with (
            _events_rejected(store),
            pytest.raises(DBAPIError),
            store.session() as session,
        ):
            results.append(read_secret(session, keyring, principal, "hubspot"))
        assert results == []


@contextmanager
def _events_rejected(store: Store) -> Iterator[None]:
    """Make the database reject every new event, as a full disk would."""
    if store.engine.dialect.name == "postgresql":
        create = [
            "CREATE FUNCTION test_reject_event() RETURNS trigger LANGUAGE plpgsql "
            "AS $$ BEGIN RAISE EXCEPTION 'event log unavailable'; END $$",
            "CREATE TRIGGER test_reject_event BEFORE INSERT ON events "
            "FOR EACH ROW EXECUTE FUNCTION test_reject_event()",
        ]
        drop = [
            "DROP TRIGGER test_reject_event ON events",
            "DROP FUNCTION test_reject_event()",
        ]
    else:
        create = [
            "CREATE TRIGGER test_reject_event BEFORE INSERT ON events "
            "BEGIN SELECT RAISE(ABORT, 'event log unavailable'); END"
        ]
        drop = ["DROP TRIGGER test_reject_event"]
    with store.engine.begin() as connection:
        for statement in create:
            connection.execute(text(statement))
    try:
        yield
    finally:
        with store.engine.begin() as connection:
            for statement in drop:
                connection.execute(text(statement))
