"""Audit results in the shape every report format reads."""

from collections import Counter
from dataclasses import asdict, dataclass, field
from datetime import datetime
from typing import Any

from keysteward.audit.rules import SEVERITY_ORDER
from keysteward.findings.models import Severity


@dataclass
class RankedFinding:
    """One finding with the credential details a reader needs to act on it."""

    rank: int
    finding_id: int | None
    severity: str
    score: float
    rule: str
    title: str
    recommendation: str
    evidence: dict[str, Any]
    status: str
    credential_id: int
    credential: str
    system: str
    owner: str
    privilege: str
    source: str
    source_id: str

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass
class AuditSummary:
    """The at-a-glance figures of one run, for the report headers."""

    run_id: int | None
    as_of: datetime | None
    credentials_evaluated: int
    credentials_with_findings: int
    findings_by_severity: dict[str, int]
    # Departed person label -> number of their active credentials.
    departed_with_live_keys: dict[str, int] = field(default_factory=dict)
    # Days since each evaluated credential's secret was issued.
    credential_ages_days: list[int] = field(default_factory=list)
    resolved: int = 0
    system: str | None = None

    @property
    def total_findings(self) -> int:
        return sum(self.findings_by_severity.values())

    def as_dict(self) -> dict[str, Any]:
        data = asdict(self)
        data.pop("credential_ages_days")
        data["total_findings"] = self.total_findings
        return data


def count_by_severity(findings: list[RankedFinding]) -> dict[str, int]:
    """Return the number of findings per severity, most severe first."""
    counts = Counter(finding.severity for finding in findings)
    return {
        str(severity): counts.get(severity, 0) for severity in reversed(SEVERITY_ORDER)
    }


def severity_at_least(severity: str, floor: Severity) -> bool:
    return SEVERITY_ORDER.index(Severity(severity)) >= SEVERITY_ORDER.index(floor)
