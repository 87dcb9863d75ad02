"""Bearer authentication: access tokens checked first, throttling on failures."""

from collections.abc import Callable

import pytest

from common.queries import count_queries
from keysteward.db import Store
from keysteward.tokens.access import issue_access_token
from keysteward.tokens.errors import AuthenticationError, ThrottledError
from keysteward.tokens.exchange import authenticate_bearer
from keysteward.tokens.models import AuthFailure
from keysteward.tokens.principals import Principal
from keysteward.tokens.services import (
    FREE_FAILURES,
    issue_api_token,
    record_auth_failure,
    throttle_delay,
)
from keysteward.vault.keys import KeyRing

SOURCE = "10.0.0.9"


def _block(store: Store, source: str) -> None:
    """Fail often enough from ``source`` that it stays blocked for minutes."""
    with store.session() as session:
        for _ in range(FREE_FAILURES + 8):
            record_auth_failure(session, source)
    with store.session() as session:
        assert throttle_delay(session, source) is not None


def _failures(store: Store, source: str) -> int:
    with store.session() as session:
        row = session.get(AuthFailure, source)
        return 0 if row is None else row.failures


def _api_token(store: Store, principal: Principal) -> str:
    with store.session() as session:
        return issue_api_token(session, principal, actor="t").token


@pytest.fixture
def principal(make_account: Callable[..., Principal]) -> Principal:
    return make_account("crm-sync", "keysteward:secrets/hubspot:read")


@pytest.fixture
def access_token(keyring: KeyRing, principal: Principal) -> str:
    return issue_access_token(keyring, principal, {"r"}, api_token_id=1).token


class TestAuthenticateBearer:
    def test_access_token_accepted(
        self, store: Store, keyring: KeyRing, principal: Principal, access_token: str
    ) -> None:
        found = authenticate_bearer(store, keyring, access_token, source=SOURCE)
        assert found.id == principal.id
        assert found.role_limit == frozenset({"r"})

    def test_access_token_needs_no_query(
        self, store: Store, keyring: KeyRing, access_token: str
    ) -> None:
        with count_queries(store) as statements:
            authenticate_bearer(store, keyring, access_token, source=SOURCE)
        assert statements == []

    def test_wrong_access_token_queries_store(
        self, store: Store, keyring: KeyRing, access_token: str
    ) -> None:
        with (
            count_queries(store) as statements,
            pytest.raises(AuthenticationError),
        ):
            authenticate_bearer(store, keyring, access_token + "x", source=SOURCE)
        assert statements != []

    def test_wrong_access_token_counted(
        self, store: Store, keyring: KeyRing, access_token: str
    ) -> None:
        with pytest.raises(AuthenticationError):
            authenticate_bearer(store, keyring, access_token + "x", source=SOURCE)
        assert _failures(store, SOURCE) == 1

    def test_other_keyring_token_counted(
        self, store: Store, other_keyring: KeyRing, access_token: str
    ) -> None:
        with pytest.raises(AuthenticationError):
            authenticate_bearer(store, other_keyring, access_token, source=SOURCE)
        assert _failures(store, SOURCE) == 1

    def test_wrong_access_tokens_get_blocked(
        self, store: Store, keyring: KeyRing
    ) -> None:
        for _ in range(FREE_FAILURES + 1):
            with pytest.raises(AuthenticationError):
                authenticate_bearer(store, keyring, "not.a.jwt", source=SOURCE)
        with pytest.raises(ThrottledError):
            authenticate_bearer(store, keyring, "not.a.jwt", source=SOURCE)

    def test_blocked_source_keeps_access_token(
        self, store: Store, keyring: KeyRing, principal: Principal, access_token: str
    ) -> None:
        _block(store, SOURCE)
        found = authenticate_bearer(store, keyring, access_token, source=SOURCE)
        assert found.id == principal.id

    def test_blocked_source_wrong_access_token_throttled(
        self, store: Store, keyring: KeyRing, access_token: str
    ) -> None:
        _block(store, SOURCE)
        failures = _failures(store, SOURCE)
        with pytest.raises(ThrottledError) as caught:
            authenticate_bearer(store, keyring, access_token + "x", source=SOURCE)
        assert caught.value.retry_after >= 1
        # A throttled attempt is turned away before it is counted.
        assert _failures(store, SOURCE) == failures

    def test_blocked_source_api_token_throttled(
        self, store: Store, keyring: KeyRing, principal: Principal
    ) -> None:
        token = _api_token(store, principal)
        assert authenticate_bearer(store, keyring, token, source=SOURCE) == principal
        _block(store, SOURCE)
        with pytest.raises(ThrottledError):
            authenticate_bearer(store, keyring, token, source=SOURCE)

    def test_other_source_not_throttled(
        self, store: Store, keyring: KeyRing, principal: Principal
    ) -> None:
        token = _api_token(store, principal)
        _block(store, SOURCE)
        found = authenticate_bearer(store, keyring, token, source="10.0.0.10")
        assert found == principal

    def test_missing_source_counted_as_unknown(
        self, store: Store, keyring: KeyRing
    ) -> None:
        with pytest.raises(AuthenticationError):
            authenticate_bearer(store, keyring, "not.a.jwt", source=None)
        assert _failures(store, "unknown") == 1
