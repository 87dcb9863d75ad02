"""Tokens limited to some roles are judged on those roles only."""

from keysteward.authz.engine import compile_policy
from keysteward.authz.policy import AssignmentSpec, Policy, RoleSpec
from keysteward.gateway.proxy import explain_role_limit
from keysteward.tokens.principals import Principal, PrincipalType

PRINCIPAL = "service_account:crm-sync"
PERMISSION = "hubspot:contacts:read"


def _index():
    policy = Policy(
        roles={
            "admin-tools": RoleSpec("admin-tools", permissions=("hubspot:**:admin",)),
            "reader": RoleSpec("reader", permissions=(PERMISSION,)),
        },
        assignments=(
            AssignmentSpec(principal=PRINCIPAL, role="admin-tools"),
            AssignmentSpec(principal=PRINCIPAL, role="reader"),
        ),
    )
    return compile_policy(policy, version=1)


def _principal(roles: frozenset[str] | None) -> Principal:
    return Principal(PrincipalType.SERVICE_ACCOUNT, 1, "crm-sync", roles)


def test_grant_through_limited_role() -> None:
    principal = _principal(frozenset({"reader"}))
    decision = _index().check(PRINCIPAL, PERMISSION, roles=principal.role_limit)
    assert explain_role_limit(decision, principal)


def test_role_outside_limit_denied() -> None:
    principal = _principal(frozenset({"reader"}))
    decision = _index().check(
        PRINCIPAL, "hubspot:contacts:delete", roles=principal.role_limit
    )
    explained = explain_role_limit(decision, principal)
    assert not explained
    assert "limited to roles reader" in explained.reason


def test_unlimited_token_uses_every_role() -> None:
    principal = _principal(None)
    decision = _index().check(PRINCIPAL, "hubspot:contacts:delete")
    assert explain_role_limit(decision, principal)
