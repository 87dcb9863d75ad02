"""Rules about the system a credential belongs to."""

from keysteward.audit.config import Thresholds
from keysteward.audit.context import AuditContext, CredentialView
from keysteward.audit.rules._base import Hit, raised, rule
from keysteward.findings.models import Severity


@rule("system_decommissioned")
def system_decommissioned(
    credential: CredentialView, context: AuditContext, thresholds: Thresholds
) -> Hit | None:
    """Flag an active credential of a decommissioned system."""
    system = credential.system
    if system is None or system.status != "decommissioned":
        return None
    severity = Severity.MEDIUM
    if credential.privilege_rank >= 2:
        severity = raised(severity)
    return Hit(
        rule="system_decommissioned",
        severity=severity,
        title=f"System {system.name} is decommissioned",
        recommendation=(
            "Revoke the credential at the provider, or mark the system active "
            "again if it is still in use."
        ),
        evidence={
            "system": system.name,
            "decommissioned_on": system.attributes.get("decommissioned_on"),
        },
    )
