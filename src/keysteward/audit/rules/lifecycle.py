"""Rules about a credential's age: rotation, use and expiry."""

from keysteward.audit.config import Thresholds
from keysteward.audit.context import AuditContext, CredentialView
from keysteward.audit.rules._base import Hit, iso, raised, rule
from keysteward.findings.models import Severity


@rule("rotation_overdue")
def rotation_overdue(
    credential: CredentialView, context: AuditContext, thresholds: Thresholds
) -> Hit | None:
    """Flag a secret older than the rotation policy allows.

    Low while less than twice the limit, medium beyond, one level higher for
    admin credentials. Keys the provider rotates itself are skipped.
    """
    if credential.attributes.get("system_managed") is True:
        return None
    age = context.days_since(credential.rotation_reference)
    limit = thresholds.rotation_max_age_days
    # NOTE: a credential whose source gives neither a creation nor a rotation
    # date cannot be judged here and gets no rotation finding.
    if age is None or age <= limit:
        return None
    severity = Severity.MEDIUM if age > 2 * limit else Severity.LOW
    if credential.is_admin:
        severity = raised(severity)
    return Hit(
        rule="rotation_overdue",
        severity=severity,
        title=f"Not rotated for {age} days (policy: {limit})",
        recommendation=(
            "Issue a new secret, move its users to it, then revoke the old one."
        ),
        evidence={
            "age_days": age,
            "rotation_max_age_days": limit,
            "last_rotated_at": iso(credential.last_rotated_at),
            "created_at": iso(credential.created_at),
        },
    )


@rule("never_used")
def never_used(
    credential: CredentialView, context: AuditContext, thresholds: Thresholds
) -> Hit | None:
    """Flag a credential never used, when its source reports usage.

    Credentials younger than the grace period are skipped because they may
    simply be new. Medium, high for write or admin credentials.
    """
    if not credential.usage_known or credential.last_used_at is not None:
        return None
    age = context.days_since(credential.created_at)
    if age is None or age < thresholds.never_used_grace_days:
        return None
    severity = Severity.HIGH if credential.privilege_rank >= 2 else Severity.MEDIUM
    return Hit(
        rule="never_used",
        severity=severity,
        title=f"Never used in the {age} days since it was created",
        recommendation="Revoke it: nothing depends on a key that was never used.",
        evidence={"created_at": iso(credential.created_at), "age_days": age},
    )


@rule("unused")
def unused(
    credential: CredentialView, context: AuditContext, thresholds: Thresholds
) -> Hit | None:
    """Flag a credential used before but not within the unused period."""
    if not credential.usage_known or credential.last_used_at is None:
        return None
    idle = context.days_since(credential.last_used_at)
    limit = thresholds.unused_days
    if idle is None or idle <= limit:
        return None
    severity = Severity.MEDIUM if credential.privilege_rank >= 2 else Severity.LOW
    if credential.is_admin:
        severity = raised(severity)
    return Hit(
        rule="unused",
        severity=severity,
        title=f"Not used for {idle} days (limit: {limit})",
        recommendation=(
            "Confirm with the owner that nothing needs it, then revoke it."
        ),
        evidence={
            "last_used_at": iso(credential.last_used_at),
            "idle_days": idle,
            "unused_days": limit,
        },
    )


@rule("expired_active")
def expired_active(
    credential: CredentialView, context: AuditContext, thresholds: Thresholds
) -> Hit | None:
    """Flag a credential still marked active after its expiry date.

    High when it was used after it expired, because the provider then does not
    enforce the date.
    """
    if credential.expires_at is None or credential.expires_at > context.as_of:
        return None
    overdue = (context.as_of - credential.expires_at).days
    if overdue < thresholds.expired_grace_days:
        return None
    used_after = (
        credential.last_used_at is not None
        and credential.last_used_at > credential.expires_at
    )
    return Hit(
        rule="expired_active",
        severity=Severity.HIGH if used_after else Severity.MEDIUM,
        title=f"Expired {overdue} days ago but still active",
        recommendation=(
            "Revoke it at the provider and re-import, or renew it on purpose."
        ),
        evidence={
            "expires_at": iso(credential.expires_at),
            "last_used_at": iso(credential.last_used_at),
            "used_after_expiry": used_after,
        },
    )


@rule("no_expiry")
def no_expiry(
    credential: CredentialView, context: AuditContext, thresholds: Thresholds
) -> Hit | None:
    """Flag a token with no expiry date, or one beyond the maximum lifetime."""
    if credential.kind not in thresholds.token_kinds:
        return None
    if credential.attributes.get("system_managed") is True:
        return None
    lifetime_days: int | None = None
    if credential.expires_at is not None:
        start = credential.rotation_reference or context.as_of
        lifetime_days = (credential.expires_at - start).days
        if lifetime_days <= thresholds.max_token_lifetime_days:
            return None
    severity = Severity.MEDIUM if credential.privilege_rank >= 2 else Severity.LOW
    title = (
        "Never expires"
        if lifetime_days is None
        else f"Valid for {lifetime_days} days (maximum lifetime: "
        f"{thresholds.max_token_lifetime_days})"
    )
    return Hit(
        rule="no_expiry",
        severity=severity,
        title=title,
        recommendation="Replace it with a token that expires; rotate on a schedule.",
        evidence={
            "kind": credential.kind,
            "expires_at": iso(credential.expires_at),
            "lifetime_days": lifetime_days,
            "max_token_lifetime_days": thresholds.max_token_lifetime_days,
        },
    )
