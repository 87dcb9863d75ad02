"""The scope of a campaign: what is reviewed, by whom, with which facts.

``snapshot_scope`` reads the active credentials, service accounts and role
assignments once, at the campaign's start time, and turns each into a
review item with a reviewer, the facts a reviewer needs and a recommended
decision derived from open audit findings and recorded permission usage.
"""

from collections import defaultdict
from dataclasses import dataclass, field
from datetime import datetime, timedelta
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
from keysteward.events.models import Event
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
from keysteward.vault.models import Secret
from keysteward.vault.services import READ_ACTION

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
# Revoke findings that also mean someone who left may know the value.
EXPOSURE_RULES = frozenset({"owner_departed", "holder_disabled"})
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


@dataclass
class Activity:
    """Use seen in the review window, from credentials and vault reads.

    A credential or service account with use here is never recommended for
    revocation, so that accepting the recommendations cannot stop a running
    automation.
    """

    start: datetime
    # Principal label -> secret name -> last allowed read in the window.
    secret_reads: dict[str, dict[str, datetime]] = field(default_factory=dict)
    # Secret name -> last allowed read in the window, by anyone.
    secret_last_read: dict[str, datetime] = field(default_factory=dict)
    # Service account id -> latest last_used_at of its credentials.
    credential_use: dict[int, datetime] = field(default_factory=dict)
    # Credential id -> latest read of a vault secret linked to it.
    linked_reads: dict[int, datetime] = field(default_factory=dict)

    def recent(self, value: datetime | None) -> datetime | None:
        """Return ``value`` when it falls inside the window, else None."""
        moment = as_utc(value)
        return moment if moment is not None and moment >= self.start else None


def load_activity(session: Session, now: datetime) -> Activity:
    """Collect credential use and vault reads of the last USAGE_DAYS days."""
    activity = Activity(start=now - timedelta(days=USAGE_DAYS))
    reads = (
        select(Event.actor, Event.target_id, func.max(Event.occurred_at))
        .where(
            Event.action == READ_ACTION,
            Event.target_type == "secret",
            Event.outcome == "allowed",
            Event.occurred_at >= activity.start,
        )
        .group_by(Event.actor, Event.target_id)
    )
    for actor, name, last in session.execute(reads):
        moment = as_utc(last)
        if actor is None or name is None or moment is None:
            continue
        activity.secret_reads.setdefault(actor, {})[name] = moment
        previous = activity.secret_last_read.get(name)
        if previous is None or moment > previous:
            activity.secret_last_read[name] = moment
    links = session.execute(
        select(Secret.name, Secret.credential_id).where(
            Secret.credential_id.is_not(None)
        )
    )
    for name, credential_id in links:
        if credential_id is not None and name in activity.secret_last_read:
            activity.linked_reads[credential_id] = activity.secret_last_read[name]
    used = (
        select(Credential.holder_service_account_id, func.max(Credential.last_used_at))
        .where(
            Credential.holder_service_account_id.is_not(None),
            Credential.status == CredentialStatus.ACTIVE,
            Credential.last_used_at >= activity.start,
        )
        .group_by(Credential.holder_service_account_id)
    )
    for account_id, latest in session.execute(used):
        last_use = as_utc(latest)
        if account_id is not None and last_use is not None:
            activity.credential_use[account_id] = last_use
    return activity


def snapshot_scope(session: Session, now: datetime) -> list[ScopeItem]:
    """Return every item in scope at ``now``; reviewers are None where none fits."""
    usage_recorded = session.scalar(select(func.count(PermissionUsage.id))) or 0
    recommendations = {
        entry.principal: entry
        for entry in recommend(session, days=USAGE_DAYS, now=now).principals
    }
    activity = load_activity(session, now)
    usage_known = usage_recorded > 0 or bool(activity.secret_reads)
    items = list(_credential_items(session, activity))
    items.extend(_service_account_items(session, recommendations, activity))
    items.extend(_assignment_items(session, recommendations, activity, usage_known))
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


def _credential_items(session: Session, activity: Activity) -> list[ScopeItem]:
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
        last_use = max(
            filter(
                None,
                [
                    activity.recent(credential.last_used_at),
                    activity.linked_reads.get(credential.id),
                ],
            ),
            default=None,
        )
        recommendation, reason = _recommend_credential(open_findings, last_use)
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
    open_findings: list[dict[str, str]], last_use: datetime | None = None
) -> tuple[Decision, str]:
    """Return the decision and reason; ``last_use`` is its use in the window."""
    rules = {finding["rule"] for finding in open_findings}
    revoke = sorted(rules & REVOKE_RULES)
    if revoke and last_use is not None:
        # A credential in use is rotated, not revoked, when someone who left
        # may know it, and kept otherwise, so no running job loses it.
        used = f"used {last_use.date().isoformat()}"
        exposed = sorted(rules & (ROTATE_RULES | EXPOSURE_RULES))
        if exposed:
            return Decision.ROTATE, f"{used}; open finding(s): {', '.join(exposed)}"
        return Decision.KEEP, f"{used}; check open finding(s): {', '.join(revoke)}"
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
    session: Session,
    recommendations: dict[str, PrincipalRecommendation],
    activity: Activity,
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
        reads = activity.secret_reads.get(principal, {})
        evidence = _account_evidence(
            activity,
            token_last_used,
            last_seen,
            max(reads.values(), default=None),
            activity.credential_use.get(account.id),
        )
        last_used = max(
            filter(None, [token_last_used, last_seen, *evidence.values()]),
            default=None,
        )
        facts = {
            "owner": account.owner.email if account.owner else None,
            "purpose": account.purpose,
            "active_tokens": token_count,
            "last_used_at": _iso(last_used),
            "roles": usage.roles if usage else [],
            "unused_permissions": len(usage.unused) if usage else 0,
            "secrets_read": sorted(reads),
        }
        if evidence:
            seen = ", ".join(
                f"{source} {moment.date().isoformat()}"
                for source, moment in sorted(evidence.items())
            )
            recommendation, reason = Decision.KEEP, f"in use: {seen}"
        elif token_count and facts["last_used_at"] is None:
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


def _account_evidence(
    activity: Activity,
    token_last_used: datetime | None,
    permission_last_seen: datetime | None,
    secret_last_read: datetime | None,
    credential_last_used: datetime | None,
) -> dict[str, datetime]:
    """Return the kinds of use seen in the window, each with its latest time."""
    found = {
        "token used": activity.recent(token_last_used),
        "permission used": activity.recent(permission_last_seen),
        "secret read": activity.recent(secret_last_read),
        "credential used": activity.recent(credential_last_used),
    }
    return {source: moment for source, moment in found.items() if moment}


def _assignment_items(
    session: Session,
    recommendations: dict[str, PrincipalRecommendation],
    activity: Activity,
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
        seen = _seen_permissions(recommendations.get(principal), activity, principal)
        used = _used_through_role(seen, role_permissions)
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


def _seen_permissions(
    usage: PrincipalRecommendation | None, activity: Activity, principal: str
) -> list[str]:
    """Return the permissions ``principal`` used: recorded usage and vault reads."""
    seen = set(usage.suggested_permissions) if usage else set()
    for name in activity.secret_reads.get(principal, {}):
        seen.add(f"keysteward:secrets/{name}:read")
    return sorted(seen)


def _used_through_role(seen: list[str], role_permissions: list[str]) -> list[str]:
    """Return the used permissions that this role's own grants cover."""
    patterns = [parse_pattern(text) for text in role_permissions]
    used = []
    for text in seen:
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
