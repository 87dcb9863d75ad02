"""The rule registry and what a rule returns."""

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from keysteward.audit.config import Thresholds
from keysteward.audit.context import AuditContext, CredentialView
from keysteward.findings.models import Severity

SEVERITY_ORDER = (Severity.LOW, Severity.MEDIUM, Severity.HIGH, Severity.CRITICAL)
SEVERITY_RANK = {severity: rank for rank, severity in enumerate(SEVERITY_ORDER)}


@dataclass
class Hit:
    """One problem a rule found with one credential."""

    rule: str
    severity: Severity
    title: str
    recommendation: str
    evidence: dict[str, Any] = field(default_factory=dict)


RuleCheck = Callable[[CredentialView, AuditContext, Thresholds], Hit | None]

RULES: dict[str, RuleCheck] = {}


def rule(rule_id: str) -> Callable[[RuleCheck], RuleCheck]:
    """Register the decorated function as the check for ``rule_id``."""

    def register(check: RuleCheck) -> RuleCheck:
        if rule_id in RULES:
            raise RuntimeError(f"audit rule {rule_id!r} is registered twice")
        RULES[rule_id] = check
        return check

    return register


def raised(severity: Severity, steps: int = 1) -> Severity:
    """Return ``severity`` raised by ``steps`` levels, at most critical."""
    rank = min(SEVERITY_RANK[severity] + steps, len(SEVERITY_ORDER) - 1)
    return SEVERITY_ORDER[rank]


def at_least(severity: Severity, floor: Severity | None) -> Severity:
    """Return the higher of ``severity`` and ``floor``."""
    if floor is None or SEVERITY_RANK[severity] >= SEVERITY_RANK[floor]:
        return severity
    return floor


def iso(value: Any) -> str | None:
    """Return a date or datetime as ISO 8601 text for evidence, or None."""
    return None if value is None else value.isoformat()


def person_label(person: Any) -> str:
    return f"{person.name} <{person.email}>"
