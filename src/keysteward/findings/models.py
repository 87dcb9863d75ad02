from datetime import datetime
from enum import StrEnum
from typing import Any

from sqlalchemy import ForeignKey, Index, String
from sqlalchemy.orm import Mapped, mapped_column, relationship

from keysteward.clock import utcnow
from keysteward.credentials.models import Credential
from keysteward.db import Base


class Severity(StrEnum):
    LOW = "low"
    MEDIUM = "medium"
    HIGH = "high"
    CRITICAL = "critical"


class FindingStatus(StrEnum):
    OPEN = "open"
    RESOLVED = "resolved"
    ACCEPTED = "accepted"
    # Replaced by the same rule's finding in a later audit run.
    SUPERSEDED = "superseded"


class AuditRun(Base):
    """One evaluation of the inventory by the audit rules."""

    __tablename__ = "audit_runs"

    id: Mapped[int] = mapped_column(primary_key=True)
    started_at: Mapped[datetime] = mapped_column(default=utcnow)
    finished_at: Mapped[datetime | None]
    credentials_evaluated: Mapped[int] = mapped_column(default=0)
    findings_count: Mapped[int] = mapped_column(default=0)
    # The date the rules judged ages against; None for runs made before it existed.
    as_of: Mapped[datetime | None]
    # Filters and thresholds the run used, for reading old runs.
    parameters: Mapped[dict[str, Any]] = mapped_column(default=dict)


class Finding(Base):
    """A problem an audit rule found with a credential, and the fix."""

    __tablename__ = "findings"
    __table_args__ = (
        Index("ix_findings_credential_id", "credential_id"),
        Index("ix_findings_audit_run_id", "audit_run_id"),
        Index("ix_findings_status", "status"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    audit_run_id: Mapped[int | None] = mapped_column(
        ForeignKey("audit_runs.id", ondelete="CASCADE")
    )
    credential_id: Mapped[int | None] = mapped_column(
        ForeignKey("credentials.id", ondelete="CASCADE")
    )
    rule: Mapped[str] = mapped_column(String(100))
    severity: Mapped[str] = mapped_column(String(20))
    score: Mapped[float] = mapped_column(default=0.0)
    title: Mapped[str] = mapped_column(String(500))
    evidence: Mapped[dict[str, Any]] = mapped_column(default=dict)
    recommendation: Mapped[str] = mapped_column(String(1000))
    status: Mapped[str] = mapped_column(String(20), default=FindingStatus.OPEN)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    resolved_at: Mapped[datetime | None]

    credential: Mapped[Credential | None] = relationship()
