"""Rules about who is accountable for a credential and who is its holder."""

from datetime import timedelta

from keysteward.audit.config import Thresholds
from keysteward.audit.context import AuditContext, CredentialView, PersonView
from keysteward.audit.rules._base import Hit, iso, person_label, raised, rule
from keysteward.findings.models import Severity

PERSON_ROLES = ("owner", "holder", "creator")


def _departed_people(
    credential: CredentialView, context: AuditContext, thresholds: Thresholds
) -> dict[str, PersonView]:
    cutoff = context.as_of_date - timedelta(days=thresholds.departed_grace_days)
    candidates = {
        "owner": credential.accountable_person,
        "holder": credential.holder_person,
        "creator": credential.created_by,
    }
    return {
        role: person
        for role, person in candidates.items()
        if person is not None and person.departed_by(cutoff)
    }


@rule("owner_departed")
def owner_departed(
    credential: CredentialView, context: AuditContext, thresholds: Thresholds
) -> Hit | None:
    """Flag a credential whose owner, holder or creator has left.

    High when the owner or holder left, and critical when the credential is
    also admin. Medium when only the creator left and a current person owns it.
    """
    departed = _departed_people(credential, context, thresholds)
    if not departed:
        return None
    if "owner" in departed or "holder" in departed:
        severity = Severity.CRITICAL if credential.is_admin else Severity.HIGH
    else:
        severity = Severity.MEDIUM
    role, person = next((r, departed[r]) for r in PERSON_ROLES if r in departed)
    evidence: dict[str, object] = {
        departed_role: {
            "person": person_label(departed_person),
            "departed_on": iso(departed_person.departed_on),
        }
        for departed_role, departed_person in departed.items()
    }
    evidence["privilege"] = credential.privilege
    evidence["last_used_at"] = iso(credential.last_used_at)
    return Hit(
        rule="owner_departed",
        severity=severity,
        title=f"{role.capitalize()} {person.name} has left; the credential is active",
        recommendation=(
            "Revoke the credential, or rotate it and hand it to a current owner "
            "(a service account if an automation needs it)."
        ),
        evidence=evidence,
    )


@rule("no_owner")
def no_owner(
    credential: CredentialView, context: AuditContext, thresholds: Thresholds
) -> Hit | None:
    """Flag a credential with no owner and no owned service account as holder."""
    if credential.accountable_person is not None:
        return None
    evidence = {
        "created_by": (
            person_label(credential.created_by) if credential.created_by else None
        ),
        "holder_service_account": (
            credential.holder_service_account.name
            if credential.holder_service_account
            else None
        ),
        "privilege": credential.privilege,
    }
    return Hit(
        rule="no_owner",
        severity=Severity.MEDIUM,
        title="No owner is recorded",
        recommendation="Assign an owner who answers for this credential, or revoke it.",
        evidence=evidence,
    )


@rule("holder_disabled")
def holder_disabled(
    credential: CredentialView, context: AuditContext, thresholds: Thresholds
) -> Hit | None:
    """Flag an active credential whose holder service account is disabled."""
    account = credential.holder_service_account
    if account is None or account.status != "disabled":
        return None
    severity = Severity.MEDIUM
    if credential.privilege_rank >= 2:
        severity = raised(severity)
    return Hit(
        rule="holder_disabled",
        severity=severity,
        title=f"Service account {account.name} is disabled but its credential is not",
        recommendation=(
            "Revoke the credential; a disabled account should hold no live keys."
        ),
        evidence={
            "service_account": account.name,
            "privilege": credential.privilege,
            "last_used_at": iso(credential.last_used_at),
        },
    )


def _is_personal(credential: CredentialView) -> bool:
    if credential.holder_service_account is not None:
        return False
    if credential.holder_person is not None:
        return True
    return credential.attributes.get("identity_kind") == "person"


@rule("personal_credential_automation")
def personal_credential_automation(
    credential: CredentialView, context: AuditContext, thresholds: Thresholds
) -> Hit | None:
    """Flag a credential issued to a person but used by an automation."""
    if not _is_personal(credential):
        return None
    used_by = credential.attributes.get("used_by") or []
    if isinstance(used_by, str):
        used_by = [used_by]
    automation = credential.attributes.get("used_by_automation") is True
    if not automation and not used_by:
        return None
    severity = Severity.MEDIUM
    if credential.is_admin:
        severity = raised(severity)
    holder = credential.holder_person or credential.owner
    return Hit(
        rule="personal_credential_automation",
        severity=severity,
        title="An automation runs on a person's credential",
        recommendation=(
            "Create a service account for the automation, issue it its own "
            "credential with only the scopes it uses, then revoke this one."
        ),
        evidence={
            "person": person_label(holder) if holder else None,
            "used_by": list(used_by),
            "used_by_automation": automation,
        },
    )
