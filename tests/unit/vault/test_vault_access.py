"""authorize_secret_read: exact names, wildcards, expiry, deny by default."""

from datetime import timedelta

import pytest
from sqlalchemy import select

from keysteward.authz.models import Permission, RoleGrant
from keysteward.clock import utcnow
from keysteward.db import Store
from keysteward.identities.models import ServiceAccount, ServiceAccountStatus
from keysteward.tokens.principals import Principal
from keysteward.vault.access import authorize_secret_read, permission_matches


@pytest.mark.parametrize(
    ("granted", "name", "expected"),
    [
        ("keysteward:secrets/hubspot:read", "hubspot", True),
        ("keysteward:secrets/hubspot:read", "hubspot2", False),
        ("keysteward:secrets/*:read", "anything", True),
        ("keysteward:secrets/hubspot:write", "hubspot", False),
        ("keysteward:secrets/hubspot:*", "hubspot", True),
        ("*:secrets/hubspot:read", "hubspot", True),
        ("hubspot:secrets/hubspot:read", "hubspot", False),
        ("keysteward:*:read", "hubspot", False),
        ("keysteward:secrets/hub*:read", "hubspot", False),
    ],
)
def test_permission_matches(granted: str, name: str, expected: bool) -> None:
    system, resource, action = granted.split(":")
    permission = Permission(system=system, resource=resource, action=action)
    assert permission_matches(permission, f"secrets/{name}", "read") is expected


def test_grant_allows_with_reason(store: Store, make_account) -> None:
    principal = make_account("crm-sync", "keysteward:secrets/hubspot:read")
    with store.session() as session:
        decision = authorize_secret_read(session, principal, "hubspot")
    assert decision.allowed is True
    assert "crm-sync-role" in decision.reason


def test_no_grant_denies(store: Store, make_account) -> None:
    principal = make_account("crm-sync")
    with store.session() as session:
        decision = authorize_secret_read(session, principal, "hubspot")
    assert not decision
    assert "no role" in decision.reason


def test_expired_grant_denies(store: Store, make_account) -> None:
    principal = make_account("crm-sync", "keysteward:secrets/*:read")
    with store.session() as session:
        grant = session.scalars(select(RoleGrant)).one()
        grant.expires_at = utcnow() - timedelta(minutes=1)
    with store.session() as session:
        assert not authorize_secret_read(session, principal, "hubspot")


def test_role_limit_excludes_role(store: Store, make_account) -> None:
    principal = make_account("crm-sync", "keysteward:secrets/*:read")
    limited = Principal(
        principal.type, principal.id, principal.name, frozenset({"other-role"})
    )
    with store.session() as session:
        assert authorize_secret_read(session, principal, "hubspot")
        assert not authorize_secret_read(session, limited, "hubspot")


def test_disabled_account_denied(store: Store, make_account) -> None:
    principal = make_account("crm-sync", "keysteward:secrets/*:read")
    with store.session() as session:
        account = session.get_one(ServiceAccount, principal.id)
        account.status = ServiceAccountStatus.DISABLED
    with store.session() as session:
        decision = authorize_secret_read(session, principal, "hubspot")
    assert not decision
    assert "disabled" in decision.reason
