"""Rules about what a credential can reach compared with what it uses."""

from fnmatch import fnmatchcase

from keysteward.audit.config import Thresholds
from keysteward.audit.context import PRIVILEGE_RANK, AuditContext, CredentialView
from keysteward.audit.rules._base import Hit, rule
from keysteward.credentials.models import Privilege
from keysteward.findings.models import Severity


@rule("unknown_access")
def unknown_access(
    credential: CredentialView, context: AuditContext, thresholds: Thresholds
) -> Hit | None:
    """Flag a credential with no scopes and an unknown privilege."""
    if credential.scopes or credential.privilege != Privilege.UNKNOWN:
        return None
    return Hit(
        rule="unknown_access",
        severity=Severity.LOW,
        title="No scopes and no privilege level are recorded",
        recommendation=(
            "Look the credential up at the provider and record its scopes, "
            "or import an export that lists them."
        ),
        evidence={"source": credential.source},
    )


def _unexercised_scopes(granted: list[str], used: list[str]) -> list[str]:
    """Return the granted scopes that no used scope equals or matches.

    A granted scope may be a pattern such as ``s3:*``; it counts as exercised
    when any used scope matches it.
    """
    used_set = set(used)
    return [
        scope
        for scope in granted
        if scope not in used_set
        and not any(fnmatchcase(used_scope, scope) for used_scope in used)
    ]


@rule("excess_privilege")
def excess_privilege(
    credential: CredentialView, context: AuditContext, thresholds: Thresholds
) -> Hit | None:
    """Flag a credential that can do more than its observed use needs.

    It fires when the observed privilege is below the granted one (for example
    admin granted, only reads seen), or when granted scopes were never used.
    Only sources that report use (``observed_privilege``, ``used_scopes``)
    can trigger it.
    """
    observed = credential.attributes.get("observed_privilege")
    used_scopes = credential.attributes.get("used_scopes")
    over_privileged = (
        isinstance(observed, str)
        and observed in PRIVILEGE_RANK
        and credential.privilege_rank >= PRIVILEGE_RANK[Privilege.WRITE]
        and PRIVILEGE_RANK[observed] < credential.privilege_rank
    )
    unexercised: list[str] = []
    if isinstance(used_scopes, list) and credential.scopes:
        unexercised = _unexercised_scopes(credential.scopes, used_scopes)
    if not over_privileged and not unexercised:
        return None

    evidence: dict[str, object] = {"privilege": credential.privilege}
    if over_privileged:
        evidence["observed_privilege"] = observed
        title = f"Granted {credential.privilege}, only {observed} use seen"
    else:
        title = f"{len(unexercised)} granted scopes were never used"
    if unexercised:
        evidence["unused_scopes"] = unexercised
        evidence["used_scopes"] = list(used_scopes or [])
    return Hit(
        rule="excess_privilege",
        severity=Severity.MEDIUM if credential.is_admin else Severity.LOW,
        title=title,
        recommendation=(
            "Reissue the credential with only the scopes and privilege it uses."
        ),
        evidence=evidence,
    )
