"""Whether a principal may read a secret.

A principal may read secret NAME when one of its roles has the permission
``keysteward:secrets/NAME:read``. A ``*`` segment in a granted permission
matches any one segment, so ``keysteward:secrets/*:read`` grants every
secret. Expired grants, roles outside a token's role subset and inactive
principals grant nothing; anything not granted is denied.
"""

from dataclasses import dataclass

from sqlalchemy import or_, select
from sqlalchemy.orm import Session

from keysteward.authz.models import Permission, Role, RoleGrant
from keysteward.clock import utcnow
from keysteward.tokens.principals import Principal, load_principal

SYSTEM = "keysteward"
READ_ACTION = "read"
WILDCARD = "*"


@dataclass(frozen=True)
class AccessDecision:
    """An allow or deny, with the reason recorded in the read event."""

    allowed: bool
    reason: str

    def __bool__(self) -> bool:
        return self.allowed


def secret_resource(name: str) -> str:
    return f"secrets/{name}"


def _segment_matches(granted: str, requested: str) -> bool:
    return granted in (WILDCARD, requested)


def permission_matches(permission: Permission, resource: str, action: str) -> bool:
    """Return whether ``permission`` grants ``keysteward:resource:action``."""
    if not _segment_matches(permission.system, SYSTEM):
        return False
    if not _segment_matches(permission.action, action):
        return False
    granted = permission.resource.split("/")
    requested = resource.split("/")
    if len(granted) != len(requested):
        return False
    return all(_segment_matches(g, r) for g, r in zip(granted, requested, strict=True))


def authorize_secret_read(
    session: Session, principal: Principal, name: str
) -> AccessDecision:
    """Decide whether ``principal`` may read the secret ``name``.

    NOTE: this should call the authz policy engine once it is available. It
    reads role grants directly and ignores deny rules and groups.
    """
    # Reasons name no secret or permission string: they go into event
    # details, which the event log rejects when text looks like a secret.
    if load_principal(session, principal.type, principal.id) is None:
        return AccessDecision(False, "principal is disabled or departed")
    grants = select(RoleGrant, Role).join(Role, RoleGrant.role_id == Role.id)
    grants = grants.where(
        RoleGrant.principal_type == str(principal.type),
        RoleGrant.principal_id == principal.id,
        or_(RoleGrant.expires_at.is_(None), RoleGrant.expires_at > utcnow()),
    )
    resource = secret_resource(name)
    for _grant, role in session.execute(grants):
        if principal.role_limit is not None and role.name not in principal.role_limit:
            continue
        for permission in role.permissions:
            if permission_matches(permission, resource, READ_ACTION):
                return AccessDecision(True, f"granted by role {role.name}")
    return AccessDecision(False, "no role grants read")
