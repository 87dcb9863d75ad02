"""The scope of a campaign: what is reviewed, by whom, with which facts.

``snapshot_scope`` reads the active credentials, service accounts and role
assignments once, at the campaign's start time, and turns each into a
review item with a reviewer, the facts a reviewer needs and a recommended
decision derived from open audit findings and recorded permission usage.
"""

from collections import defaultdict
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.orm import Session, selectinload

from keysteward.authz.models import PermissionUsage, Role, RoleGrant
from keysteward.authz.permissions import (
    PrincipalKind,
    covered_actions,
    parse_pattern,
)
from keysteward.authz.recommend import PrincipalRecommendation, recommend
from keysteward.clock import as_utc
from keysteward.credentials.models import Credential, CredentialStatus
from keysteward.findings.models import Finding, FindingStatus
from keysteward.identities.models import (
    Person,
    PersonStatus,
    ServiceAccount,
    ServiceAccountStatus,
)
from keysteward.reviews.models import Decision, SubjectType
from keysteward.tokens.models import ApiToken
from keysteward.tokens.principals import PrincipalType

# Usage looked at when judging privilege against use, in days.
USAGE_DAYS = 90
# Open findings of these rules mean the credential should go.
REVOKE_RULES = frozenset(
    {
        "owner_departed",
        "holder_disabled",
        "expired_active",
        "system_decommissioned",
        "unused",
        "never_used",
    }
)
# Open findings of these rules mean the value may be known to others.
ROTATE_RULES = frozenset(
    {
        "rotation_overdue",
        "duplicate_secret",
        "plaintext_transport",
        "found_outside_vault",
        "departed_reader",
    }
)


@dataclass
class ScopeItem:
    """One review item before it is stored."""

    subject_type: SubjectType
    subject_id: int
    subject_label: str
    reviewee: str | None
    reviewer: str | None
    facts: dict[str, Any]
    recommendation: Decision
    reason: str
    recommended_permissions: list[str] = field(default_factory=list)


def _iso(value: datetime | None) -> str | None:
    value = as_utc(value)
    return None if value is None else value.isoformat(timespec="seconds")


def _reviewer(candidate: Person | None, reviewee: str | None) -> str | None:
    """Return the candidate's email, or None when they cannot review this item."""
    if candidate is None or candidate.status == PersonStatus.DEPARTED:
        return None
    if reviewee is not None and candidate.email == reviewee:
        return None
    return candidate.email


def snapshot_scope(session: Session, now: datetime) -> list[ScopeItem]:
    """Return every item in scope at ``now``; reviewers are None where none fits."""
    usage_recorded = session.scalar(select(func.count(PermissionUsage.id))) or 0
    recommendations = {
        entry.principal: entry
        for entry in recommend(session, days=USAGE_DAYS, now=now).principals
    }
    items = list(_credential_items(session))
    items.extend(_service_account_items(session, recommendations))
    items.extend(_assignment_items(session, recommendations, usage_recorded > 0))
    return items


def _open_findings(session: Session) -> dict[int, list[dict[str, str]]]:
    query = (
        select(Finding.credential_id, Finding.rule, Finding.severity)
        .where(Finding.status == FindingStatus.OPEN, Finding.credential_id.is_not(None))
        .order_by(Finding.credential_id, Finding.rule)
    )
    findings: dict[int, list[dict[str, str]]] = defaultdict(list)
    for credential_id, rule, severity in session.execute(query):
        if credential_id is None:
            continue
        findings[credential_id].append({"rule": rule, "severity": severity})
    return findings


def _credential_items(session: Session) -> list[ScopeItem]:
    findings = _open_findings(session)
    query = (
        select(Credential)
        .where(Credential.status == CredentialStatus.ACTIVE)
        .options(
            selectinload(Credential.system),
            selectinload(Credential.owner),
            selectinload(Credential.holder_person),
            selectinload(Credential.holder_service_account).selectinload(
                ServiceAccount.owner
            ),
        )
        .order_by(Credential.id)
    )
    items = []
    for credential in session.scalars(query):
        holder = credential.holder_person
        account = credential.holder_service_account
        reviewee = holder.email if holder else None
        owner = credential.owner or (account.owner if account else None)
        open_findings = findings.get(credential.id, [])
        recommendation, reason = _recommend_credential(open_findings)
        system = credential.system.name if credential.system else "unknown"
        items.append(
            ScopeItem(
                subject_type=SubjectType.CREDENTIAL,
                subject_id=credential.id,
                subject_label=f"{system}/{credential.name}",
                reviewee=reviewee,
                reviewer=_reviewer(owner, reviewee),
                facts={
                    "system": system,
                    "kind": credential.kind,
                    "privilege": credential.privilege,
                    "scopes": list(credential.scopes or []),
                    "owner": owner.email if owner else None,
                    "holder": reviewee or (account.name if account else None),
                    "last_used_at": _iso(credential.last_used_at),
                    "last_rotated_at": _iso(
                        credential.last_rotated_at or credential.created_at
                    ),
                    "open_findings": open_findings,
                },
                recommendation=recommendation,
                reason=reason,
            )
        )
    return items


def _recommend_credential(
    open_findings: list[dict[str, str]],
) -> tuple[Decision, str]:
    rules = {finding["rule"] for finding in open_findings}
    revoke = sorted(rules & REVOKE_RULES)
    if revoke:
        return Decision.REVOKE, f"open finding(s): {', '.join(revoke)}"
    rotate = sorted(rules & ROTATE_RULES)
    if rotate:
        return Decision.ROTATE, f"open finding(s): {', '.join(rotate)}"
    if open_findings:
        others = ", ".join(sorted(rules))
        return Decision.KEEP, f"no revoke or rotate finding; also open: {others}"
    return Decision.KEEP, "no open findings"


def _token_facts(session: Session) -> dict[int, tuple[int, datetime | None]]:
    query = (
        select(ApiToken.principal_id, func.count(), func.max(ApiToken.last_used_at))
        .where(
            ApiToken.principal_type == PrincipalType.SERVICE_ACCOUNT,
            ApiToken.revoked_at.is_(None),
        )
        .group_by(ApiToken.principal_id)
    )
    return {
        principal_id: (int(count), as_utc(last))
        for principal_id, count, last in session.execute(query)
    }


def _service_account_items(
    session: Session, recommendations: dict[str, PrincipalRecommendation]
) -> list[ScopeItem]:
    tokens = _token_facts(session)
    query = (
        select(ServiceAccount)
        .where(ServiceAccount.status == ServiceAccountStatus.ACTIVE)
        .order_by(ServiceAccount.name)
    )
    items = []
    for account in session.scalars(query):
        principal = f"{PrincipalKind.SERVICE_ACCOUNT}:{account.name}"
        usage = recommendations.get(principal)
        token_count, token_last_used = tokens.get(account.id, (0, None))
        last_seen = usage.last_seen_at if usage else None
        facts = {
            "owner": account.owner.email if account.owner else None,
            "purpose": account.purpose,
            "active_tokens": token_count,
            "last_used_at": _iso(
                max(filter(None, [token_last_used, last_seen]), default=None)
            ),
            "roles": usage.roles if usage else [],
            "unused_permissions": len(usage.unused) if usage else 0,
        }
        if token_count and facts["last_used_at"] is None:
            recommendation, reason = Decision.REVOKE, "active tokens, none ever used"
        elif not token_count and not facts["roles"]:
            recommendation, reason = Decision.REVOKE, "no active tokens and no roles"
        else:
            recommendation, reason = Decision.KEEP, "in use"
        items.append(
            ScopeItem(
                subject_type=SubjectType.SERVICE_ACCOUNT,
                subject_id=account.id,
                subject_label=principal,
                reviewee=None,
                reviewer=_reviewer(account.owner, None),
                facts=facts,
                recommendation=recommendation,
                reason=reason,
            )
        )
    return items


def _assignment_items(
    session: Session,
    recommendations: dict[str, PrincipalRecommendation],
    usage_recorded: bool,
) -> list[ScopeItem]:
    # NOTE: roles given to groups are not reviewed as assignments yet; their
    # members' direct assignments are.
    query = (
        select(RoleGrant, Role)
        .join(Role, RoleGrant.role_id == Role.id)
        .where(
            RoleGrant.principal_type.in_(
                [PrincipalKind.PERSON.value, PrincipalKind.SERVICE_ACCOUNT.value]
            )
        )
        .order_by(RoleGrant.id)
    )
    people = {person.id: person for person in session.scalars(select(Person))}
    accounts = {a.id: a for a in session.scalars(select(ServiceAccount))}
    items = []
    for grant, role in session.execute(query):
        if grant.principal_type == PrincipalKind.PERSON:
            person = people.get(grant.principal_id)
            if person is None or person.status == PersonStatus.DEPARTED:
                continue
            principal = f"{PrincipalKind.PERSON}:{person.email}"
            reviewee: str | None = person.email
            reviewer = _reviewer(person.manager, reviewee)
        else:
            account = accounts.get(grant.principal_id)
            if account is None or account.status != ServiceAccountStatus.ACTIVE:
                continue
            principal = f"{PrincipalKind.SERVICE_ACCOUNT}:{account.name}"
            reviewee = None
            reviewer = _reviewer(account.owner, None)
        role_permissions = sorted(str(p) for p in role.permissions)
        used = _used_through_role(recommendations.get(principal), role_permissions)
        recommendation, reason = _recommend_assignment(
            role.name, role_permissions, used, usage_recorded
        )
        usage = recommendations.get(principal)
        items.append(
            ScopeItem(
                subject_type=SubjectType.ROLE_ASSIGNMENT,
                subject_id=grant.id,
                subject_label=f"{principal} -> {role.name}",
                reviewee=reviewee,
                reviewer=reviewer,
                facts={
                    "principal": principal,
                    "role": role.name,
                    "expires_at": _iso(grant.expires_at),
                    "granted": role_permissions,
                    "used": used,
                    "last_used_at": _iso(usage.last_seen_at if usage else None),
                    "usage_days": USAGE_DAYS,
                },
                recommendation=recommendation,
                reason=reason,
                recommended_permissions=(
                    used if recommendation == Decision.REDUCE else []
                ),
            )
        )
    return items


def _used_through_role(
    usage: PrincipalRecommendation | None, role_permissions: list[str]
) -> list[str]:
    """Return the suggested permissions that this role's own grants cover."""
    if usage is None:
        return []
    patterns = [parse_pattern(text) for text in role_permissions]
    used = []
    for text in usage.suggested_permissions:
        suggestion = parse_pattern(text)
        for pattern in patterns:
            if pattern.system != suggestion.system:
                continue
            if suggestion.action not in covered_actions(pattern.action):
                continue
            same = pattern.segments == suggestion.segments
            if same or (
                suggestion.is_literal
                and pattern.matches_resource(suggestion.segments, for_deny=False)
            ):
                used.append(text)
                break
    return sorted(used)


def _recommend_assignment(
    role: str, granted: list[str], used: list[str], usage_recorded: bool
) -> tuple[Decision, str]:
    if not usage_recorded:
        return Decision.KEEP, (
            "no permission usage recorded; import usage to judge privilege against use"
        )
    if not used:
        return (
            Decision.REVOKE,
            f"no permission of role {role} used in {USAGE_DAYS} days",
        )
    if set(used) != set(granted):
        return Decision.REDUCE, (
            f"{len(used)} of {len(granted)} permission(s) of role {role} used "
            f"in {USAGE_DAYS} days"
        )
    return Decision.KEEP, f"every permission of role {role} used"
