"""Least-privilege recommendations from recorded usage.

For each principal, compare what its roles grant with what it was allowed to
do in the last N days. Grants never exercised are candidates for removal.
The permissions it did use form a smaller role that would have allowed every
observed request. Roles get the same treatment across all their holders.
"""

from collections import defaultdict
from dataclasses import asdict, dataclass, field
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from keysteward.authz.engine import compile_policy, grants_by_principal
from keysteward.authz.models import PermissionUsage
from keysteward.authz.permissions import PrincipalKind, parse_pattern, parse_request
from keysteward.authz.services import load_store_policy
from keysteward.clock import as_utc, utcnow

# A used wildcard grant that matched more literal resources than this is kept
# as a wildcard (narrowed to the observed actions) instead of being listed
# resource by resource.
MAX_LITERALS_PER_PATTERN = 10


@dataclass
class PrincipalRecommendation:
    principal: str
    roles: list[str]
    granted: list[str]
    unused: list[str]
    observed: list[str]
    observed_requests: int
    suggested_permissions: list[str]
    last_seen_at: datetime | None
    # Observed permissions the current policy no longer allows.
    no_longer_allowed: list[str] = field(default_factory=list)


@dataclass
class RoleRecommendation:
    role: str
    holders: list[str]
    permissions: list[str]
    unused: list[str]


@dataclass
class Recommendations:
    days: int
    since: datetime
    principals: list[PrincipalRecommendation]
    roles: list[RoleRecommendation]

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def _observed_usage(
    session: Session, since: datetime
) -> dict[str, dict[str, tuple[int, datetime]]]:
    query = (
        select(
            PermissionUsage.principal,
            PermissionUsage.permission,
            func.sum(PermissionUsage.allowed_count),
            func.max(PermissionUsage.last_seen_at),
        )
        .where(PermissionUsage.day >= since.date())
        .group_by(PermissionUsage.principal, PermissionUsage.permission)
    )
    observed: dict[str, dict[str, tuple[int, datetime]]] = defaultdict(dict)
    for principal, permission, allowed, last in session.execute(query):
        if allowed:
            observed[principal][permission] = (int(allowed), as_utc(last) or since)
    return observed


def _suggest(used: dict[str, set[str]]) -> list[str]:
    """Narrow each used grant to the literal permissions it allowed."""
    suggested: set[str] = set()
    for pattern_text, literals in used.items():
        pattern = parse_pattern(pattern_text)
        if pattern.is_literal and len(literals) == 1:
            suggested |= literals
            continue
        if len(literals) <= MAX_LITERALS_PER_PATTERN:
            suggested |= literals
            continue
        for action in sorted({parse_request(text).action for text in literals}):
            suggested.add(f"{pattern.system}:{pattern.resource}:{action}")
    return sorted(suggested)


def recommend(
    session: Session, days: int = 90, now: datetime | None = None
) -> Recommendations:
    """Compare the stored grants with usage recorded in the last ``days`` days."""
    now = as_utc(now) or utcnow()
    since = now - timedelta(days=days)
    policy = load_store_policy(session)
    index = compile_policy(policy, now=now)
    observed = _observed_usage(session, since)
    grants = grants_by_principal(policy, now)

    used_by_role: dict[str, set[str]] = defaultdict(set)
    holders_by_role: dict[str, set[str]] = defaultdict(set)
    principals = []
    for principal in sorted(grants):
        if principal.startswith(f"{PrincipalKind.GROUP}:"):
            continue
        held = grants[principal]
        for grant in held:
            holders_by_role[grant.role_path[-1]].add(principal)
        usage = observed.get(principal, {})
        used: dict[str, set[str]] = defaultdict(set)
        no_longer: list[str] = []
        for permission in sorted(usage):
            # NOTE: usage is matched against today's policy, so a grant that
            # was used and then replaced by a different grant counts as unused.
            decision = index.check(principal, permission, at=now)
            if decision.grant is None:
                no_longer.append(permission)
                continue
            used[decision.grant.permission].add(permission)
            used_by_role[decision.grant.role_path[-1]].add(decision.grant.permission)
        granted = sorted({grant.permission for grant in held})
        last_seen = max((last for _, last in usage.values()), default=None)
        principals.append(
            PrincipalRecommendation(
                principal=principal,
                roles=sorted({grant.role for grant in held}),
                granted=granted,
                unused=[text for text in granted if text not in used],
                observed=sorted(usage),
                observed_requests=sum(count for count, _ in usage.values()),
                suggested_permissions=_suggest(used),
                last_seen_at=last_seen,
                no_longer_allowed=no_longer,
            )
        )

    roles = []
    for name, spec in sorted(policy.roles.items()):
        permissions = sorted(set(spec.permissions))
        roles.append(
            RoleRecommendation(
                role=name,
                holders=sorted(holders_by_role.get(name, ())),
                permissions=permissions,
                unused=[p for p in permissions if p not in used_by_role.get(name, ())],
            )
        )
    return Recommendations(days, since, principals, roles)
