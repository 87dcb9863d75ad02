"""Operator roles and the permission check behind every API route and page.

keysteward's own permissions have the form ``keysteward:<resource>:<action>``
and are decided by the authz engine, on the stored policy plus three
built-in roles that ``keysteward user role`` assigns to people:

- ``keysteward-admin``: ``keysteward:*:admin`` (every resource, every action);
- ``keysteward-reviewer``: read everything and decide access reviews;
- ``keysteward-read-only``: read everything.

A service account gets keysteward permissions from the stored policy like
any other grant, so a deny rule there also applies to operators. Anything
not granted is denied.
"""

import threading
from dataclasses import replace
from enum import StrEnum

from sqlalchemy import select
from sqlalchemy.orm import Session

from keysteward.authz.engine import Decision, PolicyIndex, compile_policy
from keysteward.authz.policy import AssignmentSpec, Policy, RoleSpec
from keysteward.authz.services import load_store_policy, read_policy_version
from keysteward.db import Store
from keysteward.identities.models import Person
from keysteward.operators.models import OperatorLogin
from keysteward.tokens.principals import Principal


class OperatorRole(StrEnum):
    ADMIN = "admin"
    REVIEWER = "reviewer"
    READ_ONLY = "read-only"


class Perm(StrEnum):
    """Every permission a keysteward route requires, grouped by resource."""

    AUDIT_READ = "keysteward:audit:read"
    AUDIT_WRITE = "keysteward:audit:write"
    CHECKS_READ = "keysteward:checks:read"
    CREDENTIALS_READ = "keysteward:credentials:read"
    DISCOVERY_READ = "keysteward:discovery:read"
    EVENTS_READ = "keysteward:events:read"
    FINDINGS_READ = "keysteward:findings:read"
    OFFBOARDING_READ = "keysteward:offboarding:read"
    PEOPLE_READ = "keysteward:people:read"
    POLICY_READ = "keysteward:policy:read"
    POLICY_WRITE = "keysteward:policy:write"
    REVIEWS_READ = "keysteward:reviews:read"
    REVIEWS_WRITE = "keysteward:reviews:write"
    ROLES_READ = "keysteward:roles:read"
    ROTATIONS_READ = "keysteward:rotations:read"
    SECRETS_READ = "keysteward:secrets:read"
    SERVICE_ACCOUNTS_READ = "keysteward:service_accounts:read"
    SYSTEMS_READ = "keysteward:systems:read"
    TOKENS_READ = "keysteward:tokens:read"


ROLE_PREFIX = "keysteward-"

BUILTIN_ROLES: dict[OperatorRole, RoleSpec] = {
    OperatorRole.ADMIN: RoleSpec(
        name=f"{ROLE_PREFIX}admin",
        permissions=("keysteward:*:admin",),
        description="Operate keysteward: read and change everything",
    ),
    OperatorRole.REVIEWER: RoleSpec(
        name=f"{ROLE_PREFIX}reviewer",
        permissions=("keysteward:*:read", Perm.REVIEWS_WRITE),
        description="Read everything and decide access reviews",
    ),
    OperatorRole.READ_ONLY: RoleSpec(
        name=f"{ROLE_PREFIX}read-only",
        permissions=("keysteward:*:read",),
        description="Read everything, change nothing",
    ),
}


def operator_assignments(session: Session) -> tuple[tuple[str, str], ...]:
    """Return ``(email, role)`` of every person holding an operator role."""
    rows = session.execute(
        select(Person.email, OperatorLogin.role)
        .join(OperatorLogin, OperatorLogin.person_id == Person.id)
        .where(OperatorLogin.role.is_not(None))
        .order_by(Person.email)
    )
    return tuple((email, role) for email, role in rows if role is not None)


def combined_policy(session: Session) -> Policy:
    """Return the stored policy with the built-in roles and operator assignments.

    A stored role with a built-in role's name is replaced by the built-in one.
    """
    stored = load_store_policy(session)
    roles = dict(stored.roles)
    for spec in BUILTIN_ROLES.values():
        roles[spec.name] = spec
    assignments = list(stored.assignments)
    by_value = {str(role): spec for role, spec in BUILTIN_ROLES.items()}
    for email, role in operator_assignments(session):
        # A stored value that is no operator role (edited by hand) grants nothing.
        builtin = by_value.get(role)
        if builtin is not None:
            assignments.append(
                AssignmentSpec(principal=f"person:{email}", role=builtin.name)
            )
    return replace(stored, roles=roles, assignments=tuple(assignments))


class OperatorAuthorizer:
    """Cache the compiled combined policy of one store until either part changes."""

    def __init__(self, store: Store) -> None:
        self._store = store
        self._lock = threading.Lock()
        self._key: tuple[int, tuple[tuple[str, str], ...]] | None = None
        self._index: PolicyIndex | None = None

    def index(self, session: Session) -> PolicyIndex:
        key = (read_policy_version(session), operator_assignments(session))
        with self._lock:
            if self._index is None or key != self._key or self._expired():
                self._index = compile_policy(combined_policy(session), version=key[0])
                self._key = key
            return self._index

    def _expired(self) -> bool:
        from keysteward.clock import utcnow

        valid_until = self._index.valid_until if self._index else None
        return valid_until is not None and valid_until <= utcnow()

    def check(
        self, session: Session, principal: Principal, permission: str
    ) -> Decision:
        """Decide whether ``principal`` has ``permission``, denying by default.

        A token limited to some roles is allowed only through one of them.
        """
        decision = self.index(session).check(principal.label, permission)
        if not decision or principal.role_limit is None:
            return decision
        grant = decision.grant
        granted_role = grant.role_path[0] if grant and grant.role_path else None
        if granted_role is None and grant is not None:
            granted_role = grant.role
        if granted_role in principal.role_limit:
            return decision
        return Decision(
            False,
            principal.label,
            permission,
            note=f"the token of {principal.label} is limited to roles "
            f"{', '.join(sorted(principal.role_limit))}, none of which grants "
            f"{permission}",
        )


_authorizers: dict[int, OperatorAuthorizer] = {}
_authorizers_lock = threading.Lock()


def operator_authorizer(store: Store) -> OperatorAuthorizer:
    """Return the shared OperatorAuthorizer of ``store``."""
    with _authorizers_lock:
        found = _authorizers.get(id(store))
        if found is None or found._store is not store:
            found = OperatorAuthorizer(store)
            _authorizers[id(store)] = found
        return found
