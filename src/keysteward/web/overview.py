"""The figures on the dashboard's home page, read from the same services as the CLI."""

from dataclasses import dataclass, field
from typing import Any

from markupsafe import Markup
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from keysteward.audit.queries import list_findings
from keysteward.audit.reports.charts import age_histogram, findings_by, stacked_bars
from keysteward.audit.results import RankedFinding
from keysteward.clock import as_utc, utcnow
from keysteward.credentials.models import Credential, CredentialStatus
from keysteward.identities.models import Person, PersonStatus, ServiceAccount
from keysteward.systems.models import System

TOP_FINDINGS = 10
FIX_FIRST = 5
URGENT_SEVERITIES = ("critical", "high")


@dataclass
class Overview:
    counts: dict[str, int]
    top_findings: list[RankedFinding]
    fix_first: list[RankedFinding]
    charts: dict[str, Markup]
    findings_total: int
    severity_counts: dict[str, int] = field(default_factory=dict)


def _count(session: Session, statement: Any) -> int:
    return int(session.scalar(statement) or 0)


def credential_ages_days(session: Session) -> list[int]:
    """Return each active credential's days since its last rotation or creation."""
    now = utcnow()
    ages = []
    rows = session.execute(
        select(Credential.last_rotated_at, Credential.created_at).where(
            Credential.status == CredentialStatus.ACTIVE
        )
    )
    for rotated, created in rows:
        since = as_utc(rotated) or as_utc(created)
        if since is not None:
            ages.append(max(0, (now - since).days))
    return ages


def build_overview(session: Session) -> Overview:
    """Collect the home page's counts, ranked findings and charts."""
    counts = {
        "credentials": _count(
            session,
            select(func.count(Credential.id)).where(
                Credential.status == CredentialStatus.ACTIVE
            ),
        ),
        "systems": _count(session, select(func.count(System.id))),
        "people": _count(
            session,
            select(func.count(Person.id)).where(Person.status == PersonStatus.ACTIVE),
        ),
        "service_accounts": _count(session, select(func.count(ServiceAccount.id))),
    }
    findings = list_findings(session)
    open_findings = [f for f in findings if f.status == "open"]
    severity_counts: dict[str, int] = {}
    for finding in open_findings:
        severity_counts[finding.severity] = severity_counts.get(finding.severity, 0) + 1
    urgent = [f for f in open_findings if f.severity in URGENT_SEVERITIES]
    charts = {
        "age": age_histogram(credential_ages_days(session)),
        "systems": stacked_bars(
            findings_by(open_findings, "system"), "Open findings per system"
        ),
        "owners": stacked_bars(
            findings_by(open_findings, "owner"), "Open findings per owner"
        ),
    }
    return Overview(
        counts=counts,
        top_findings=open_findings[:TOP_FINDINGS],
        fix_first=urgent[:FIX_FIRST],
        charts=charts,
        findings_total=len(open_findings),
        severity_counts=severity_counts,
    )
