"""The figures on the dashboard's home page, read from the same services as the CLI."""

from dataclasses import dataclass, field
from typing import Any

from markupsafe import Markup, escape
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from keysteward.audit.queries import list_findings
from keysteward.audit.reports.charts import (
    FONT,
    age_histogram,
    findings_by,
    stacked_bars,
)
from keysteward.audit.results import RankedFinding
from keysteward.authz.recommend import recommend
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


USAGE_DAYS = 90
USAGE_ROWS = 10


def usage_against_grants(session: Session) -> list[tuple[str, int, int]]:
    """Return (principal, used, unused) grant counts, most unused grants first."""
    rows = [
        (item.principal, len(item.granted) - len(item.unused), len(item.unused))
        for item in recommend(session, days=USAGE_DAYS).principals
        if item.granted
    ]
    rows.sort(key=lambda row: (-row[2], row[0]))
    return rows[:USAGE_ROWS]


def usage_chart(rows: list[tuple[str, int, int]]) -> Markup:
    """Draw one bar per principal: grants used in the window, then unused ones."""
    label_width, bar_width, row_height = 190, 200, 24
    height = 40 + row_height * max(len(rows), 1)
    width = label_width + bar_width + 60
    peak = max((used + unused for _name, used, unused in rows), default=0) or 1
    title = f"Grants used in the last {USAGE_DAYS} days"
    parts = [
        f"<svg xmlns='http://www.w3.org/2000/svg' width='{width}' height='{height}'"
        f" role='img' aria-label='{title}'><title>{title}</title>"
    ]
    if not rows:
        parts.append(f"<text x='10' y='30' {FONT}>No grants.</text>")
    for index, (name, used, unused) in enumerate(rows):
        y = 10 + index * row_height
        used_width = bar_width * used / peak
        unused_width = bar_width * unused / peak
        parts.append(
            f"<text x='{label_width - 6}' y='{y + 14}' text-anchor='end' {FONT}>"
            f"{escape(name[:30])}</text>"
            f"<rect x='{label_width}' y='{y}' width='{used_width:.1f}' height='16'"
            f" fill='#2f7a4a'/>"
            f"<rect x='{label_width + used_width:.1f}' y='{y}'"
            f" width='{unused_width:.1f}' height='16' fill='#cbd2d9'/>"
            f"<text x='{label_width + used_width + unused_width + 4:.1f}'"
            f" y='{y + 13}' {FONT}>{used}/{used + unused}</text>"
        )
    legend_y = height - 12
    parts.append(
        f"<rect x='10' y='{legend_y - 9}' width='10' height='10' fill='#2f7a4a'/>"
        f"<text x='24' y='{legend_y}' {FONT}>used</text>"
        f"<rect x='70' y='{legend_y - 9}' width='10' height='10' fill='#cbd2d9'/>"
        f"<text x='84' y='{legend_y}' {FONT}>never used</text></svg>"
    )
    # Every interpolated name above went through escape().
    return Markup("".join(parts))  # noqa: S704


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
        "usage": usage_chart(usage_against_grants(session)),
    }
    return Overview(
        counts=counts,
        top_findings=open_findings[:TOP_FINDINGS],
        fix_first=urgent[:FIX_FIRST],
        charts=charts,
        findings_total=len(open_findings),
        severity_counts=severity_counts,
    )
