"""API tokens in the store: issue, authenticate, expire, revoke, throttle."""

from datetime import timedelta

import pytest
from sqlalchemy import select

from common.queries import count_queries
from keysteward.clock import as_utc, utcnow
from keysteward.db import Store
from keysteward.identities.models import ServiceAccount, ServiceAccountStatus
from keysteward.tokens import services
from keysteward.tokens.errors import AuthenticationError, InvalidTokenRequest
from keysteward.tokens.models import ApiToken
from keysteward.tokens.services import (
    authenticate_api_token,
    issue_api_token,
    record_auth_failure,
    revoke_api_token,
    throttle_delay,
    token_digest,
)


def _issue(store: Store, principal, **options) -> tuple[int, str]:
    with store.session() as session:
        issued = issue_api_token(session, principal, actor="t", **options)
        return issued.record.id, issued.token


def test_only_digest_stored(store: Store, make_account) -> None:
    principal = make_account("crm-sync")
    token_id, token = _issue(store, principal)
    with store.session() as session:
        record = session.get_one(ApiToken, token_id)
        assert record.digest == token_digest(token)
        assert token not in repr(vars(record))
        assert record.hint == token[7:11]


def test_authenticate_returns_principal(store: Store, make_account) -> None:
    principal = make_account("crm-sync")
    token_id, token = _issue(store, principal)
    with store.session() as session:
        found, record = authenticate_api_token(session, token)
    assert found.label == "service_account:crm-sync"
    assert found.role_limit is None
    assert record.id == token_id
    with store.session() as session:
        assert session.get_one(ApiToken, token_id).last_used_at is not None


def test_default_expiry_90_days(store: Store, make_account) -> None:
    _token_id, _token = _issue(store, make_account("crm-sync"))
    with store.session() as session:
        record = session.scalars(select(ApiToken)).one()
        lifetime = as_utc(record.expires_at) - as_utc(record.created_at)
    assert lifetime == timedelta(days=90)


def test_no_expiry_only_when_asked(store: Store, make_account) -> None:
    principal = make_account("crm-sync")
    token_id, _token = _issue(store, principal, no_expiry=True)
    with store.session() as session:
        assert session.get_one(ApiToken, token_id).expires_at is None
    with pytest.raises(InvalidTokenRequest, match="choose one"):
        _issue(store, principal, no_expiry=True, lifetime=timedelta(days=1))


def test_lifetime_over_three_years_rejected(store: Store, make_account) -> None:
    principal = make_account("crm-sync")
    with pytest.raises(InvalidTokenRequest, match="--no-expiry"):
        _issue(store, principal, lifetime=timedelta(days=99999))
    with store.session() as session:
        assert session.scalars(select(ApiToken)).all() == []
    token_id, _token = _issue(store, principal, lifetime=timedelta(days=3 * 365))
    assert token_id > 0


def test_expired_token_rejected(store: Store, make_account) -> None:
    _token_id, token = _issue(
        store, make_account("crm-sync"), lifetime=timedelta(days=30)
    )
    later = utcnow() + timedelta(days=30, seconds=1)
    with store.session() as session:
        authenticate_api_token(session, token)
        with pytest.raises(AuthenticationError) as caught:
            authenticate_api_token(session, token, now=later)
    assert str(caught.value) == ""


def test_revoked_token_rejected(store: Store, make_account) -> None:
    token_id, token = _issue(store, make_account("crm-sync"))
    with store.session() as session:
        revoke_api_token(session, token_id, actor="t")
    with pytest.raises(AuthenticationError), store.session() as session:
        authenticate_api_token(session, token)


def test_disabled_account_rejected(store: Store, make_account) -> None:
    principal = make_account("crm-sync")
    _token_id, token = _issue(store, principal)
    with store.session() as session:
        account = session.get_one(ServiceAccount, principal.id)
        account.status = ServiceAccountStatus.DISABLED
    with pytest.raises(AuthenticationError), store.session() as session:
        authenticate_api_token(session, token)


def test_checksum_typo_needs_no_query(store: Store, make_account) -> None:
    _token_id, token = _issue(store, make_account("crm-sync"))
    typo = token[:-1] + ("A" if token[-1] != "A" else "B")
    with store.session() as session:
        session.connection()  # open the transaction before counting
        with count_queries(store) as statements:
            with pytest.raises(AuthenticationError):
                authenticate_api_token(session, typo)
            assert statements == []
            authenticate_api_token(session, token)
            assert statements != []


def test_unknown_token_rejected(store: Store) -> None:
    from keysteward.tokens.prefix import generate_api_token

    with pytest.raises(AuthenticationError), store.session() as session:
        authenticate_api_token(session, generate_api_token())


def test_role_subset_must_be_held(store: Store, make_account) -> None:
    principal = make_account("crm-sync", "keysteward:secrets/*:read")
    token_id, token = _issue(store, principal, roles=["crm-sync-role"])
    with store.session() as session:
        found, _record = authenticate_api_token(session, token)
    assert found.role_limit == frozenset({"crm-sync-role"})
    with pytest.raises(InvalidTokenRequest, match="does not hold role"):
        _issue(store, principal, roles=["admin"])


def test_lifetime_setting_invalid() -> None:
    from keysteward.tokens.principals import PrincipalType

    with pytest.raises(InvalidTokenRequest, match="KEYSTEWARD_SERVICE_ACCOUNT"):
        services.default_token_lifetime(
            PrincipalType.SERVICE_ACCOUNT,
            {services.SERVICE_ACCOUNT_DAYS_SETTING: "ten"},
        )
    lifetime = services.default_token_lifetime(
        PrincipalType.SERVICE_ACCOUNT, {services.SERVICE_ACCOUNT_DAYS_SETTING: "7"}
    )
    assert lifetime == timedelta(days=7)


class TestThrottle:
    def test_free_failures_not_blocked(self, store: Store) -> None:
        now = utcnow()
        with store.session() as session:
            for _ in range(services.FREE_FAILURES):
                record_auth_failure(session, "10.0.0.9", now=now)
            assert throttle_delay(session, "10.0.0.9", now=now) is None

    def test_blocks_and_doubles(self, store: Store) -> None:
        now = utcnow()
        with store.session() as session:
            for _ in range(services.FREE_FAILURES + 1):
                record_auth_failure(session, "10.0.0.9", now=now)
            assert throttle_delay(session, "10.0.0.9", now=now) == timedelta(seconds=1)
            record_auth_failure(session, "10.0.0.9", now=now)
            assert throttle_delay(session, "10.0.0.9", now=now) == timedelta(seconds=2)
            assert throttle_delay(session, "10.0.0.10", now=now) is None
            later = now + timedelta(seconds=3)
            assert throttle_delay(session, "10.0.0.9", now=later) is None

    def test_window_restarts_count(self, store: Store) -> None:
        now = utcnow()
        with store.session() as session:
            for _ in range(services.FREE_FAILURES):
                record_auth_failure(session, "10.0.0.9", now=now)
            after_window = now + services.FAILURE_WINDOW + timedelta(seconds=1)
            count = record_auth_failure(session, "10.0.0.9", now=after_window)
        assert count == 1

    def test_state_shared_across_sessions(self, store: Store) -> None:
        now = utcnow()
        for _ in range(services.FREE_FAILURES + 1):
            with store.session() as session:
                record_auth_failure(session, "10.0.0.9", now=now)
        with store.session() as session:
            assert throttle_delay(session, "10.0.0.9", now=now) is not None
