"""authorize_secret_read: the policy engine decides, deny by default."""

from datetime import timedelta

from sqlalchemy import select

from keysteward.authz.models import DenyRule, Role, RoleGrant
from keysteward.authz.services import mark_policy_changed
from keysteward.clock import utcnow
from keysteward.db import Store
from keysteward.identities.models import ServiceAccount, ServiceAccountStatus
from keysteward.tokens.principals import Principal
from keysteward.vault.access import authorize_secret_read


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
        mark_policy_changed(session)
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


def test_deny_rule_overrides_grant(store: Store, make_account) -> None:
    principal = make_account("crm-sync", "keysteward:secrets/*:read")
    with store.session() as session:
        role = session.scalars(select(Role).where(Role.name == "crm-sync-role")).one()
        session.add(
            DenyRule(role_id=role.id, permission="keysteward:secrets/payroll:read")
        )
        mark_policy_changed(session)
    with store.session() as session:
        assert authorize_secret_read(session, principal, "hubspot")
        decision = authorize_secret_read(session, principal, "payroll")
    assert not decision
    assert "deny rule" in decision.reason


def test_wildcard_grant_covers_names(store: Store, make_account) -> None:
    principal = make_account("crm-sync", "keysteward:secrets/crm/*:read")
    with store.session() as session:
        assert authorize_secret_read(session, principal, "crm/hubspot")
        assert not authorize_secret_read(session, principal, "billing/stripe")
