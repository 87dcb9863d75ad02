"""Passwords (Argon2id), TOTP and server-side dashboard sessions for people."""

import hashlib
import hmac
import secrets
from dataclasses import dataclass
from datetime import datetime, timedelta

import pyotp
from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError
from sqlalchemy import delete, select
from sqlalchemy.orm import Session

from keysteward.clock import as_utc, utcnow
from keysteward.crypto import aead
from keysteward.errors import InvalidInputError, NotFoundError
from keysteward.events.services import record_event
from keysteward.identities.models import Person, PersonStatus
from keysteward.identities.services import require_active_person
from keysteward.operators.errors import LoginError, WeakPasswordError
from keysteward.operators.models import OperatorLogin, WebSession
from keysteward.operators.roles import OperatorRole
from keysteward.vault.keys import KeyRing

MIN_PASSWORD_LENGTH = 12
MAX_PASSWORD_LENGTH = 1024
SESSION_LIFETIME = timedelta(hours=12)
SESSION_IDLE_TIMEOUT = timedelta(hours=2)
TOTP_KEY_PURPOSE = b"keysteward operator totp v1"
CSRF_PURPOSE = b"keysteward csrf v1"

_hasher = PasswordHasher()
# Verified against when the email is unknown, so that a wrong email costs the
# same Argon2 work as a wrong password and timing does not reveal accounts.
_DUMMY_HASH = _hasher.hash(secrets.token_urlsafe(16))


@dataclass(frozen=True)
class StartedSession:
    """A new session: the cookie value (shown once) and the person it belongs to."""

    token: str
    person_id: int
    email: str
    expires_at: datetime


def _find_person(session: Session, email: str) -> Person:
    person = session.scalar(select(Person).where(Person.email == email))
    if person is None:
        raise NotFoundError(
            f"person {email!r} not found; import the HR roster that lists them first"
        )
    return person


def _login_row(session: Session, person: Person) -> OperatorLogin:
    row = session.get(OperatorLogin, person.id)
    if row is None:
        row = OperatorLogin(person_id=person.id)
        session.add(row)
    return row


def check_password_strength(password: str, email: str) -> None:
    """Raise WeakPasswordError when ``password`` is too short, too long or the email."""
    if len(password) < MIN_PASSWORD_LENGTH:
        raise WeakPasswordError(
            f"password too short ({len(password)} characters); use at least "
            f"{MIN_PASSWORD_LENGTH}"
        )
    if len(password) > MAX_PASSWORD_LENGTH:
        raise WeakPasswordError(
            f"password too long; use at most {MAX_PASSWORD_LENGTH} characters"
        )
    if password.strip().lower() == email.lower():
        raise WeakPasswordError("password equals the email address; choose another")


def set_password(session: Session, email: str, password: str, *, actor: str) -> None:
    """Store the Argon2id hash of ``password`` for ``email`` and end their sessions."""
    person = require_active_person(_find_person(session, email))
    check_password_strength(password, email)
    row = _login_row(session, person)
    row.password_hash = _hasher.hash(password)
    row.password_changed_at = utcnow()
    session.execute(delete(WebSession).where(WebSession.person_id == person.id))
    record_event(
        session,
        actor=actor,
        action="operator.password.set",
        target_type="person",
        target_id=email,
    )


def set_role(session: Session, email: str, role: str | None, *, actor: str) -> None:
    """Give ``email`` an operator role, or take it away with None."""
    if role is not None and role not in tuple(OperatorRole):
        raise InvalidInputError(
            f"invalid operator role {role!r}; use one of {', '.join(OperatorRole)}"
        )
    person = _find_person(session, email)
    if role is not None:
        # Taking a role away from someone who left is allowed, granting is not.
        require_active_person(person)
    row = _login_row(session, person)
    row.role = role
    record_event(
        session,
        actor=actor,
        action="operator.role.set",
        target_type="person",
        target_id=email,
        details={"role": role},
    )


def _totp_key(keyring: KeyRing) -> bytes:
    return keyring.derived_key(TOTP_KEY_PURPOSE)


def _totp_associated_data(person_id: int) -> bytes:
    return f"keysteward/operator-totp/v1|{person_id}".encode()


def enable_totp(session: Session, keyring: KeyRing, email: str, *, actor: str) -> str:
    """Create a TOTP secret for ``email``; return its otpauth:// URI to enrol.

    The secret is stored encrypted, and from now on a login needs a code.
    """
    person = _find_person(session, email)
    row = _login_row(session, person)
    secret = pyotp.random_base32()
    row.totp_secret = aead.encrypt(
        _totp_key(keyring), secret.encode(), _totp_associated_data(person.id)
    )
    record_event(
        session,
        actor=actor,
        action="operator.totp.enable",
        target_type="person",
        target_id=email,
    )
    return pyotp.TOTP(secret).provisioning_uri(name=email, issuer_name="keysteward")


def _verify_totp(keyring: KeyRing, row: OperatorLogin, code: str | None) -> bool:
    if row.totp_secret is None:
        return True
    if not code:
        return False
    try:
        secret = aead.decrypt(
            _totp_key(keyring), row.totp_secret, _totp_associated_data(row.person_id)
        )
    except aead.DecryptionError:
        return False
    # valid_window=1 accepts the previous and next 30-second code for clock skew.
    # NOTE: a code is not marked as used, so it can be replayed within its
    # 90-second window together with the password.
    return pyotp.TOTP(secret.decode()).verify(code.strip(), valid_window=1)


def authenticate_person(
    session: Session,
    keyring: KeyRing,
    email: str,
    password: str,
    totp_code: str | None,
) -> Person:
    """Return the active person whose password (and TOTP code) match.

    Raises the bare LoginError for any failure, after the same Argon2 work.
    """
    person = session.scalar(select(Person).where(Person.email == email))
    row = session.get(OperatorLogin, person.id) if person is not None else None
    stored_hash = row.password_hash if row is not None else None
    try:
        _hasher.verify(stored_hash or _DUMMY_HASH, password[:MAX_PASSWORD_LENGTH])
    except (VerificationError, InvalidHashError):
        raise LoginError from None
    if person is None or row is None or stored_hash is None:
        raise LoginError
    if person.status != PersonStatus.ACTIVE or not _verify_totp(
        keyring, row, totp_code
    ):
        raise LoginError
    if _hasher.check_needs_rehash(stored_hash):
        row.password_hash = _hasher.hash(password)
    return person


def session_digest(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def start_session(
    session: Session, person: Person, *, source: str | None
) -> StartedSession:
    """Create a server-side session for ``person``; return its one-time cookie value."""
    token = secrets.token_urlsafe(32)
    now = utcnow()
    expires_at = now + SESSION_LIFETIME
    session.add(
        WebSession(
            digest=session_digest(token),
            person_id=person.id,
            created_at=now,
            last_seen_at=now,
            expires_at=expires_at,
            source_address=source,
        )
    )
    session.flush()
    return StartedSession(token, person.id, person.email, expires_at)


def resume_session(session: Session, token: str) -> Person | None:
    """Return the active person of a live session, touching its last use.

    Returns None for an unknown, expired or idle session (which is removed).
    """
    row = session.scalar(
        select(WebSession).where(WebSession.digest == session_digest(token))
    )
    if row is None:
        return None
    now = utcnow()
    expires_at = as_utc(row.expires_at)
    last_seen = as_utc(row.last_seen_at)
    if (expires_at is not None and expires_at <= now) or (
        last_seen is not None and now - last_seen > SESSION_IDLE_TIMEOUT
    ):
        session.delete(row)
        return None
    person = session.get(Person, row.person_id)
    if person is None or person.status != PersonStatus.ACTIVE:
        return None
    row.last_seen_at = now
    return person


def end_session(session: Session, token: str) -> None:
    """Delete the session of ``token``, if it exists."""
    session.execute(
        delete(WebSession).where(WebSession.digest == session_digest(token))
    )


def csrf_token(session_token: str) -> str:
    """Return the CSRF token bound to a session (synchronizer token, not stored)."""
    return hmac.new(session_token.encode(), CSRF_PURPOSE, hashlib.sha256).hexdigest()


def csrf_matches(session_token: str, submitted: str | None) -> bool:
    """Return whether ``submitted`` is the session's CSRF token (constant time)."""
    if not submitted:
        return False
    return hmac.compare_digest(csrf_token(session_token), submitted)
