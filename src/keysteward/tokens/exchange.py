"""Authenticating a request: API token or access token, with throttling.

Failed attempts are counted in a transaction of their own, so the count
survives the rollback of the request that failed.

An access token is verified before the throttle is checked. A valid HS256
signature cannot be guessed, so throttling only matters for failures, and a
valid access token is accepted without a database query. An API token is
looked up in the store, so its source is checked against the throttle first.
"""

import math

from sqlalchemy.orm import Session

from keysteward.db import Store
from keysteward.events.services import record_event
from keysteward.tokens.access import (
    AccessToken,
    issue_access_token,
    verify_access_token,
)
from keysteward.tokens.errors import AuthenticationError, ThrottledError
from keysteward.tokens.prefix import API_TOKEN_PREFIX
from keysteward.tokens.principals import Principal
from keysteward.tokens.services import (
    authenticate_api_token,
    clear_auth_failures,
    granted_role_names,
    record_auth_failure,
    throttle_delay,
)
from keysteward.transactions import run_transaction
from keysteward.vault.keys import KeyRing

UNKNOWN_SOURCE = "unknown"


def _check_throttle(store: Store, source: str) -> None:
    with store.session() as session:
        delay = throttle_delay(session, source)
    if delay is not None:
        raise ThrottledError(max(1, math.ceil(delay.total_seconds())))


def _count_failure(store: Store, source: str) -> None:
    run_transaction(store, lambda session: record_auth_failure(session, source))


def exchange_api_token(
    store: Store, keyring: KeyRing, token: str, *, source: str | None
) -> AccessToken:
    """Trade an API token for an access token (OAuth 2.0 client credentials).

    Raises ThrottledError while ``source`` is slowed down, and the bare
    AuthenticationError for any token that is not accepted.
    """
    source = source or UNKNOWN_SOURCE
    _check_throttle(store, source)

    def authenticate(session: Session) -> tuple[Principal, set[str], int]:
        principal, record = authenticate_api_token(session, token)
        roles = granted_role_names(session, principal)
        if principal.role_limit is not None:
            roles &= principal.role_limit
        clear_auth_failures(session, source)
        record_event(
            session,
            actor=principal.label,
            action="token.exchange",
            target_type="api_token",
            target_id=record.id,
            source_address=source,
        )
        return principal, roles, record.id

    try:
        principal, roles, record_id = run_transaction(store, authenticate)
    except AuthenticationError:
        _count_failure(store, source)
        raise
    return issue_access_token(keyring, principal, roles, api_token_id=record_id)


def authenticate_bearer(
    store: Store, keyring: KeyRing, token: str, *, source: str | None
) -> Principal:
    """Return the principal behind a bearer token: an access token or an API token.

    Raises ThrottledError while ``source`` is blocked, unless the token is a
    valid access token, and the bare AuthenticationError for any token that is
    not accepted.
    """
    source = source or UNKNOWN_SOURCE
    if token.startswith(API_TOKEN_PREFIX):
        _check_throttle(store, source)
        try:
            principal, _record = run_transaction(
                store, lambda session: authenticate_api_token(session, token)
            )
        except AuthenticationError:
            _count_failure(store, source)
            raise
        return principal

    try:
        return verify_access_token(keyring, token)
    except AuthenticationError:
        pass
    _check_throttle(store, source)
    _count_failure(store, source)
    raise AuthenticationError
