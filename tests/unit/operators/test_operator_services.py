"""Passwords, TOTP and sessions of operators, on both backends."""

import base64
import os
from datetime import timedelta

import pyotp
import pytest
from sqlalchemy import select, update

from keysteward.clock import utcnow
from keysteward.crypto.keyring import MASTER_KEY_SETTING, EnvironmentKeyProvider
from keysteward.db import Store
from keysteward.errors import NotFoundError
from keysteward.identities.models import Person, PersonStatus
from keysteward.operators.errors import LoginError, WeakPasswordError
from keysteward.operators.models import OperatorLogin, WebSession
from keysteward.operators.services import (
    authenticate_person,
    csrf_matches,
    csrf_token,
    enable_totp,
    resume_session,
    set_password,
    set_role,
    start_session,
)
from keysteward.vault.keys import KeyRing

PASSWORD = "a long enough passphrase"  # noqa: S105


@pytest.fixture
def keyring() -> KeyRing:
    encoded = base64.b64encode(os.urandom(32)).decode()
    return KeyRing(EnvironmentKeyProvider({MASTER_KEY_SETTING: encoded}))


@pytest.fixture
def person_store(store: Store) -> Store:
    with store.session() as session:
        session.add(Person(name="Ada", email="ada@example.com"))
        session.flush()
        set_password(session, "ada@example.com", PASSWORD, actor="test")
    return store


def test_password_stored_as_argon2id(person_store: Store) -> None:
    with person_store.session() as session:
        stored = session.scalars(select(OperatorLogin.password_hash)).one()
    assert stored is not None
    assert stored.startswith("$argon2id$")
    assert PASSWORD not in stored


def test_login_accepts_right_password(person_store: Store, keyring: KeyRing) -> None:
    with person_store.session() as session:
        person = authenticate_person(
            session, keyring, "ada@example.com", PASSWORD, None
        )
    assert person.email == "ada@example.com"


@pytest.mark.parametrize(
    ("email", "password"),
    [
        ("ada@example.com", "wrong password!!"),
        ("eve@example.com", PASSWORD),
        ("ada@example.com", ""),
    ],
)
def test_login_rejects_bad_credentials(
    person_store: Store, keyring: KeyRing, email: str, password: str
) -> None:
    with person_store.session() as session, pytest.raises(LoginError):
        authenticate_person(session, keyring, email, password, None)


def test_departed_person_cannot_login(person_store: Store, keyring: KeyRing) -> None:
    with person_store.session() as session:
        session.execute(update(Person).values(status=PersonStatus.DEPARTED))
    with person_store.session() as session, pytest.raises(LoginError):
        authenticate_person(session, keyring, "ada@example.com", PASSWORD, None)


def test_short_password_rejected(person_store: Store) -> None:
    with person_store.session() as session, pytest.raises(WeakPasswordError) as caught:
        set_password(session, "ada@example.com", "short", actor="test")
    assert "at least 12" in str(caught.value)


def test_unknown_person_named(person_store: Store) -> None:
    with person_store.session() as session, pytest.raises(NotFoundError) as caught:
        set_password(session, "eve@example.com", PASSWORD, actor="test")
    assert "eve@example.com" in str(caught.value)


def test_invalid_role_rejected(person_store: Store) -> None:
    with person_store.session() as session, pytest.raises(Exception) as caught:
        set_role(session, "ada@example.com", "root", actor="test")
    assert "admin, reviewer, read-only" in str(caught.value)


def test_totp_required_once_enabled(person_store: Store, keyring: KeyRing) -> None:
    with person_store.session() as session:
        uri = enable_totp(session, keyring, "ada@example.com", actor="test")
    secret = pyotp.parse_uri(uri).secret
    with person_store.session() as session:
        stored = session.scalars(select(OperatorLogin.totp_secret)).one()
    assert stored is not None
    assert secret.encode() not in stored
    with person_store.session() as session, pytest.raises(LoginError):
        authenticate_person(session, keyring, "ada@example.com", PASSWORD, None)
    with person_store.session() as session, pytest.raises(LoginError):
        authenticate_person(session, keyring, "ada@example.com", PASSWORD, "000000")
    code = pyotp.TOTP(secret).now()
    with person_store.session() as session:
        person = authenticate_person(
            session, keyring, "ada@example.com", PASSWORD, code
        )
    assert person.email == "ada@example.com"


def test_session_resumes_until_idle(person_store: Store) -> None:
    with person_store.session() as session:
        person = session.scalars(select(Person)).one()
        started = start_session(session, person, source="127.0.0.1")
    with person_store.session() as session:
        assert resume_session(session, started.token) is not None
    with person_store.session() as session:
        session.execute(
            update(WebSession).values(last_seen_at=utcnow() - timedelta(hours=3))
        )
    with person_store.session() as session:
        assert resume_session(session, started.token) is None
    with person_store.session() as session:
        assert session.scalars(select(WebSession)).all() == []


def test_password_change_ends_sessions(person_store: Store) -> None:
    with person_store.session() as session:
        person = session.scalars(select(Person)).one()
        started = start_session(session, person, source=None)
    with person_store.session() as session:
        set_password(session, "ada@example.com", PASSWORD + "2", actor="test")
    with person_store.session() as session:
        assert resume_session(session, started.token) is None


def test_csrf_token_bound_to_session() -> None:
    token = csrf_token("session-one")
    assert csrf_matches("session-one", token)
    assert not csrf_matches("session-two", token)
    assert not csrf_matches("session-one", None)
    assert not csrf_matches("session-one", "")
