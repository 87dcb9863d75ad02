"""Scores that order findings so the first lines are what to fix first.

score = severity weight x privilege x exposure x staleness

- severity weight: low 1, medium 2, high 4, critical 8.
- privilege: admin 3, write 2, read 1, unknown 1.5 (an unknown scope may
  be anything, so it ranks between read and write).
- exposure: 1 plus a weight for each exposing problem the same credential
  has: reported exposed 2, a departed owner or holder 1, a secret read by
  someone who has since left 1, found outside the vault 1, unencrypted
  transport 1, shared with other places 0.5, a person's credential run by
  an automation 0.5, no owner 0.5, a service account whose owner left 0.5,
  decommissioned system 0.5.
- staleness: 1 plus the years (capped at 3) since the secret was issued or,
  when the source reports use, since it was last used, whichever is longer.

Findings are sorted by severity first and by score within a severity.
"""

from collections.abc import Iterable
from dataclasses import dataclass

from keysteward.audit.context import AuditContext, CredentialView
from keysteward.audit.rules import SEVERITY_RANK
from keysteward.credentials.models import Privilege
from keysteward.findings.models import Severity

SEVERITY_WEIGHT = {
    Severity.LOW: 1.0,
    Severity.MEDIUM: 2.0,
    Severity.HIGH: 4.0,
    Severity.CRITICAL: 8.0,
}
PRIVILEGE_WEIGHT: dict[str, float] = {
    Privilege.UNKNOWN: 1.5,
    Privilege.READ: 1.0,
    Privilege.WRITE: 2.0,
    Privilege.ADMIN: 3.0,
}
EXPOSURE_WEIGHT = {
    "departed_reader": 1.0,
    "account_owner_departed": 0.5,
    "found_outside_vault": 1.0,
    "owner_departed": 1.0,
    "plaintext_transport": 1.0,
    "duplicate_secret": 0.5,
    "personal_credential_automation": 0.5,
    "no_owner": 0.5,
    "system_decommissioned": 0.5,
}
REPORTED_EXPOSED_WEIGHT = 2.0
MAX_STALENESS_YEARS = 3.0


@dataclass(frozen=True)
class Factors:
    """The parts of a credential's score, kept as evidence for the report."""

    privilege: float
    exposure: float
    staleness: float

    def score(self, severity: Severity) -> float:
        product = SEVERITY_WEIGHT[severity] * self.privilege
        return round(product * self.exposure * self.staleness, 2)


def privilege_factor(credential: CredentialView) -> float:
    return PRIVILEGE_WEIGHT.get(credential.privilege, 1.5)


def exposure_factor(credential: CredentialView, fired_rules: Iterable[str]) -> float:
    """Return 1 plus the weights of the exposing rules that fired on it."""
    factor = 1.0 + sum(EXPOSURE_WEIGHT.get(rule, 0.0) for rule in set(fired_rules))
    if credential.attributes.get("exposed"):
        factor += REPORTED_EXPOSED_WEIGHT
    return factor


def staleness_factor(credential: CredentialView, context: AuditContext) -> float:
    """Return 1 plus the capped years since issue or last use, the longer one."""
    days = [context.days_since(credential.rotation_reference)]
    if credential.usage_known and credential.last_used_at is not None:
        days.append(context.days_since(credential.last_used_at))
    known = [value for value in days if value is not None and value > 0]
    if not known:
        return 1.0
    return 1.0 + min(max(known) / 365.0, MAX_STALENESS_YEARS)


def credential_factors(
    credential: CredentialView, context: AuditContext, fired_rules: Iterable[str]
) -> Factors:
    return Factors(
        privilege=privilege_factor(credential),
        exposure=round(exposure_factor(credential, fired_rules), 2),
        staleness=round(staleness_factor(credential, context), 2),
    )


def rank_key(
    severity: str, score: float, credential_id: int, rule: str
) -> tuple[int, float, int, str]:
    """Return a sort key that puts the most urgent finding first."""
    return (-SEVERITY_RANK[Severity(severity)], -score, credential_id, rule)
