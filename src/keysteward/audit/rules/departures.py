"""Rules about people who left: accounts they owned and secrets they read."""

from datetime import timedelta

from keysteward.audit.config import Thresholds
from keysteward.audit.context import AuditContext, CredentialView
from keysteward.audit.rules._base import Hit, iso, person_label, raised, rule
from keysteward.findings.models import Severity


@rule("account_owner_departed")
def account_owner_departed(
    credential: CredentialView, context: AuditContext, thresholds: Thresholds
) -> Hit | None:
    """Flag a credential held by a service account whose owner has left.

    It applies only when the credential has its own current owner, because
    ``owner_departed`` already reports the credential otherwise.
    """
    account = credential.holder_service_account
    if account is None or account.owner is None or credential.owner is None:
        return None
    cutoff = context.as_of_date - timedelta(days=thresholds.departed_grace_days)
    if not account.owner.departed_by(cutoff) or credential.owner.departed_by(cutoff):
        return None
    severity = Severity.MEDIUM
    if credential.privilege_rank >= 2:
        severity = raised(severity)
    return Hit(
        rule="account_owner_departed",
        severity=severity,
        title=(
            f"Service account {account.name} is owned by {account.owner.name}, "
            "who has left"
        ),
        recommendation=(
            "Give the service account a current owner, who then reviews its "
            "credentials and roles."
        ),
        evidence={
            "service_account": account.name,
            "account_owner": person_label(account.owner),
            "departed_on": iso(account.owner.departed_on),
            "privilege": credential.privilege,
        },
    )


@rule("departed_reader")
def departed_reader(
    credential: CredentialView, context: AuditContext, thresholds: Thresholds
) -> Hit | None:
    """Flag a credential whose vault secret a departed person read before leaving.

    A rotation after the read clears it, because the value read is gone.
    """
    rotated = credential.rotation_reference
    readers = [
        reader
        for reader in context.departed_readers.get(credential.id, [])
        if rotated is None or reader.last_read_at > rotated
    ]
    if not readers:
        return None
    severity = Severity.CRITICAL if credential.is_admin else Severity.HIGH
    first = readers[0]
    return Hit(
        rule="departed_reader",
        severity=severity,
        title=f"{first.person.name} read this secret before leaving; not rotated since",
        recommendation="Rotate the credential so the value they saw stops working.",
        evidence={
            "readers": [
                {
                    "person": person_label(reader.person),
                    "secret": reader.secret,
                    "last_read_at": iso(reader.last_read_at),
                    "departed_on": iso(reader.person.departed_on),
                }
                for reader in readers
            ],
            "last_rotated_at": iso(rotated),
        },
    )
