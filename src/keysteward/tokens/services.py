"""Issuing, checking and revoking API tokens, and throttling failed attempts."""

import hashlib
import hmac
import logging
import os
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import or_, select
from sqlalchemy.orm import Session

from keysteward.authz.models import Role, RoleGrant
from keysteward.clock import as_utc, utcnow
from keysteward.db import Store
from keysteward.events.services import record_event
from keysteward.tokens.errors import (
    AuthenticationError,
    InvalidTokenRequest,
    TokenNotFoundError,
)
from keysteward.tokens.models import ApiToken, AuthFailure
from keysteward.tokens.prefix import (
    API_TOKEN_PREFIX,
    generate_api_token,
    has_valid_checksum,
)
from keysteward.tokens.principals import Principal, PrincipalType, load_principal

log = logging.getLogger(__name__)

SERVICE_ACCOUNT_DAYS_SETTING = "KEYSTEWARD_SERVICE_ACCOUNT_TOKEN_DAYS"
PERSON_DAYS_SETTING = "KEYSTEWARD_PERSON_TOKEN_DAYS"
DEFAULT_TOKEN_DAYS = 90
HINT_CHARS = 4
# last_used_at is rewritten at most this often, so that checking a token
# usually writes nothing and concurrent requests do not contend for the row.
LAST_USED_PRECISION = timedelta(minutes=1)

# Failed attempts from one source within FAILURE_WINDOW before the slowdown
# starts; each further failure doubles the wait, up to MAX_BLOCK.
FREE_FAILURES = 5
FAILURE_WINDOW = timedelta(minutes=15)
MAX_BLOCK = timedelta(minutes=5)


def token_digest(token: str) -> str:
    """Return the hex SHA-256 of ``token``, the only form the store keeps.

    A plain hash suffices (no salt or slow hash) because the token carries
    256 random bits, so there is nothing to guess from a stolen digest.
    """
    return hashlib.sha256(token.encode()).hexdigest()


# A longer lifetime is almost always a typo such as 99999d, so a token meant
# to last longer must set no_expiry.
MAX_TOKEN_LIFETIME = timedelta(days=3 * 365)


def default_token_lifetime(
    principal_type: PrincipalType, environ: Mapping[str, str] | None = None
) -> timedelta:
    """Return the default API token lifetime for a kind of principal."""
    environ = os.environ if environ is None else environ
    setting = (
        SERVICE_ACCOUNT_DAYS_SETTING
        if principal_type is PrincipalType.SERVICE_ACCOUNT
        else PERSON_DAYS_SETTING
    )
    raw = environ.get(setting)
    if not raw:
        return timedelta(days=DEFAULT_TOKEN_DAYS)
    if not raw.isdigit() or int(raw) < 1:
        raise InvalidTokenRequest(
            f"invalid {setting}={raw!r}; set a whole number of days, at least 1"
        )
    return timedelta(days=int(raw))


def granted_role_names(session: Session, principal: Principal) -> set[str]:
    """Return the names of the principal's unexpired roles."""
    query = (
        select(Role.name)
        .join(RoleGrant, RoleGrant.role_id == Role.id)
        .where(
            RoleGrant.principal_type == str(principal.type),
            RoleGrant.principal_id == principal.id,
            or_(RoleGrant.expires_at.is_(None), RoleGrant.expires_at > utcnow()),
        )
    )
    return set(session.scalars(query))


@dataclass(frozen=True)
class IssuedToken:
    """A newly issued token. ``token`` is shown once and never stored."""

    record: ApiToken
    token: str

    def __repr__(self) -> str:
        return f"IssuedToken(id={self.record.id}, token=[secure])"


def issue_api_token(
    session: Session,
    principal: Principal,
    *,
    actor: str,
    lifetime: timedelta | None = None,
    no_expiry: bool = False,
    roles: list[str] | None = None,
    description: str | None = None,
) -> IssuedToken:
    """Issue an API token for ``principal``; only its digest is stored.

    Without ``lifetime`` the token expires after the default for the kind of
    principal; it never expires only when ``no_expiry`` is set. ``roles``
    limits the token to a subset of the roles granted to the principal now.
    """
    if lifetime is not None and no_expiry:
        raise InvalidTokenRequest(
            "an expiry and --no-expiry were both given; choose one"
        )
    if lifetime is not None and lifetime <= timedelta(0):
        raise InvalidTokenRequest(
            f"invalid token lifetime {lifetime}; it must be positive"
        )
    if lifetime is not None and lifetime > MAX_TOKEN_LIFETIME:
        raise InvalidTokenRequest(
            f"invalid token lifetime {lifetime.days} days; the maximum is "
            f"{MAX_TOKEN_LIFETIME.days} days. Pass --no-expiry instead for a "
            "token that never expires"
        )
    requested_roles = sorted(set(roles or []))
    missing = set(requested_roles) - granted_role_names(session, principal)
    if missing:
        raise InvalidTokenRequest(
            f"{principal.label} does not hold role(s) {', '.join(sorted(missing))}; "
            "grant them first or leave them out of --role"
        )
    now = utcnow()
    expires_at = None
    if not no_expiry:
        expires_at = now + (lifetime or default_token_lifetime(principal.type))
    token = generate_api_token()
    record = ApiToken(
        digest=token_digest(token),
        hint=token[len(API_TOKEN_PREFIX) : len(API_TOKEN_PREFIX) + HINT_CHARS],
        principal_type=str(principal.type),
        principal_id=principal.id,
        roles=requested_roles,
        description=description,
        created_by=actor,
        created_at=now,
        expires_at=expires_at,
    )
    session.add(record)
    session.flush()
    record_event(
        session,
        actor=actor,
        action="token.issue",
        target_type="api_token",
        target_id=record.id,
        details={"principal": principal.label, "roles": requested_roles},
    )
    return IssuedToken(record, token)


def authenticate_api_token(
    session: Session, token: str, *, now: datetime | None = None
) -> tuple[Principal, ApiToken]:
    """Return the principal and record of an API token, or raise AuthenticationError.

    The checksum is checked before the store is queried. The stored digest is
    compared in constant time even though the lookup already matched it, so
    the comparison does not depend on how the database compares strings.
    """
    if not has_valid_checksum(token):
        raise AuthenticationError
    digest = token_digest(token)
    record = session.scalar(select(ApiToken).where(ApiToken.digest == digest))
    if record is None or not hmac.compare_digest(record.digest, digest):
        raise AuthenticationError
    now = now or utcnow()
    if record.revoked_at is not None:
        raise AuthenticationError
    expires_at = as_utc(record.expires_at)
    if expires_at is not None and expires_at <= now:
        raise AuthenticationError
    role_limit = frozenset(record.roles) if record.roles else None
    principal = load_principal(
        session, record.principal_type, record.principal_id, role_limit
    )
    if principal is None:
        raise AuthenticationError
    last_used = as_utc(record.last_used_at)
    if last_used is None or now - last_used >= LAST_USED_PRECISION:
        record.last_used_at = now
    return principal, record


def api_token_in_force(
    session: Session, token_id: int, *, now: datetime | None = None
) -> bool:
    """Return whether API token ``token_id`` exists, unrevoked and unexpired."""
    record = session.get(ApiToken, token_id)
    if record is None:
        return False
    return _in_force(record.revoked_at, record.expires_at, now)


def _in_force(
    revoked_at: datetime | None, expires_at: datetime | None, now: datetime | None
) -> bool:
    if revoked_at is not None:
        return False
    expires = as_utc(expires_at)
    return expires is None or (now or utcnow()) < expires


# Plain SQL on a driver connection, for api_token_in_force_unlocked.
_REVOCATION_QUERY = "SELECT revoked_at, expires_at FROM api_tokens WHERE id = {}"


def api_token_in_force_unlocked(store: Store, token_id: int) -> bool:
    """Return what ``api_token_in_force`` returns, without taking any lock.

    For request paths that must not queue behind writers. A Session on
    SQLite starts with BEGIN IMMEDIATE and waits for the write lock. This
    single SELECT runs in SQLite's autocommit mode (see db.py), or in a
    PostgreSQL transaction that is rolled back at once.
    """
    dialect = store.engine.dialect
    placeholder = "%s" if dialect.name == "postgresql" else "?"
    expires_type = ApiToken.__table__.c.expires_at.type
    to_datetime = expires_type.dialect_impl(dialect).result_processor(dialect, None)
    connection = store.engine.raw_connection()
    try:
        cursor = connection.cursor()
        try:
            cursor.execute(_REVOCATION_QUERY.format(placeholder), (token_id,))
            row = cursor.fetchone()
        finally:
            cursor.close()
        if dialect.name == "postgresql":
            connection.rollback()
    finally:
        connection.close()
    if row is None:
        return False
    expires_at = to_datetime(row[1]) if to_datetime else row[1]
    return _in_force(row[0], expires_at, None)


def revoke_api_token(session: Session, token_id: int, *, actor: str) -> ApiToken:
    """Revoke API token ``token_id``; revoking twice keeps the first time."""
    record = session.get(ApiToken, token_id)
    if record is None:
        raise TokenNotFoundError(
            f"API token {token_id} not found; `keysteward token list` shows the ids"
        )
    if record.revoked_at is None:
        record.revoked_at = utcnow()
        record_event(
            session,
            actor=actor,
            action="token.revoke",
            target_type="api_token",
            target_id=token_id,
        )
    return record


def list_api_tokens(session: Session) -> list[ApiToken]:
    return list(session.scalars(select(ApiToken).order_by(ApiToken.id)))


def throttle_delay(
    session: Session, source: str, *, now: datetime | None = None
) -> timedelta | None:
    """Return how long ``source`` must wait before its next attempt, or None."""
    row = session.get(AuthFailure, source)
    if row is None:
        return None
    blocked_until = as_utc(row.blocked_until)
    now = now or utcnow()
    if blocked_until is None or blocked_until <= now:
        return None
    return blocked_until - now


def record_auth_failure(
    session: Session, source: str, *, now: datetime | None = None
) -> int:
    """Count a failed attempt from ``source``; return its failures in the window.

    After FREE_FAILURES failures the source is blocked for 1 s, then 2 s,
    4 s and so on up to MAX_BLOCK. The count restarts when FAILURE_WINDOW has
    passed since the first failure.
    """
    now = now or utcnow()
    row = session.get(AuthFailure, source, with_for_update=True)
    if row is None:
        row = AuthFailure(source=source, failures=0, first_failed_at=now)
        session.add(row)
    elif now - (as_utc(row.first_failed_at) or now) > FAILURE_WINDOW:
        row.failures = 0
        row.first_failed_at = now
    row.failures += 1
    row.last_failed_at = now
    extra = row.failures - FREE_FAILURES
    if extra > 0:
        seconds = min(2 ** (extra - 1), MAX_BLOCK.total_seconds())
        row.blocked_until = now + timedelta(seconds=seconds)
        log.warning(
            "authentication failures from %s: %d in the window; blocked for %d s",
            source,
            row.failures,
            seconds,
        )
    else:
        log.info("authentication failed from %s (%d in window)", source, row.failures)
    session.flush()
    return row.failures


def clear_auth_failures(session: Session, source: str) -> None:
    """Forget the failures of ``source`` after a successful authentication."""
    row = session.get(AuthFailure, source)
    if row is not None:
        session.delete(row)
