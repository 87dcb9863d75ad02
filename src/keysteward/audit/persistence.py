"""Writing an audit run's findings and closing those of earlier runs.

Both steps are set-based, so a run costs a few statements whatever its size:
one bulk insert (COPY on PostgreSQL), one SELECT for the new ids and two
UPDATEs.
"""

import json
from typing import Any

import psycopg
from sqlalchemy import ColumnElement, and_, exists, insert, select, true, update
from sqlalchemy.orm import Session, aliased

from keysteward.audit.results import RankedFinding
from keysteward.clock import utcnow
from keysteward.credentials.models import Credential
from keysteward.db import Base
from keysteward.findings.models import AuditRun, Finding, FindingStatus

CARRIED_STATUSES = (FindingStatus.OPEN, FindingStatus.ACCEPTED)


def store_findings(
    session: Session,
    run: AuditRun,
    scope_system_id: int | None,
    findings: list[RankedFinding],
) -> tuple[int, int]:
    """Insert the run's findings and close the earlier ones in the same scope.

    A finding the user accepted stays accepted when its problem is found
    again. Returns the number of earlier findings superseded and resolved.
    """
    scope = _in_scope(scope_system_id)
    accepted = _accepted(session, scope)
    for finding in findings:
        acceptance = accepted.get((finding.credential_id, finding.rule))
        if acceptance is not None:
            finding.status = FindingStatus.ACCEPTED
            finding.evidence["acceptance"] = acceptance

    _insert(session, run, findings)
    return _close_earlier(session, run, scope)


def _in_scope(scope_system_id: int | None) -> ColumnElement[bool]:
    """Return the condition for findings of credentials in the run's scope.

    The scope is every credential, or one system's credentials whatever their
    status, so the findings of a revoked credential are resolved too.
    """
    if scope_system_id is None:
        return true()
    in_system = select(Credential.id).where(Credential.system_id == scope_system_id)
    return Finding.credential_id.in_(in_system)


def _accepted(
    session: Session, scope: ColumnElement[bool]
) -> dict[tuple[int | None, str], dict[str, Any]]:
    """Return the acceptance (reason, by, at) of each accepted (credential, rule)."""
    query = select(Finding.credential_id, Finding.rule, Finding.evidence).where(
        Finding.status == FindingStatus.ACCEPTED, scope
    )
    return {
        (row.credential_id, row.rule): dict(row.evidence.get("acceptance") or {})
        for row in session.execute(query)
    }


def _insert(session: Session, run: AuditRun, findings: list[RankedFinding]) -> None:
    now = utcnow()
    rows: list[dict[str, Any]] = [
        {
            "audit_run_id": run.id,
            "credential_id": finding.credential_id,
            "rule": finding.rule,
            "severity": finding.severity,
            "score": finding.score,
            "title": finding.title[:500],
            "evidence": finding.evidence,
            "recommendation": finding.recommendation[:1000],
            "status": finding.status,
            "created_at": now,
        }
        for finding in findings
    ]
    if not rows:
        return
    if session.get_bind().dialect.name == "postgresql":
        _copy_into_postgres(session, rows)
    else:
        # A Core insert without RETURNING lets SQLite use executemany.
        session.execute(insert(Base.metadata.tables[Finding.__tablename__]), rows)
    ids = session.execute(
        select(Finding.id, Finding.credential_id, Finding.rule).where(
            Finding.audit_run_id == run.id
        )
    )
    by_key = {(row.credential_id, row.rule): row.id for row in ids}
    for finding in findings:
        finding.finding_id = by_key.get((finding.credential_id, finding.rule))


def _copy_into_postgres(session: Session, rows: list[dict[str, Any]]) -> None:
    """Insert ``rows`` with COPY, much faster than INSERT for many rows.

    The rows go through the session's own connection, so they belong to the
    same transaction as the rest of the run.
    """
    driver_connection = session.connection().connection.driver_connection
    if not isinstance(driver_connection, psycopg.Connection):
        raise TypeError("the PostgreSQL store must use the psycopg driver")
    columns = list(rows[0])
    statement = f"COPY findings ({', '.join(columns)}) FROM STDIN"
    with driver_connection.cursor() as cursor, cursor.copy(statement) as copy:
        for row in rows:
            values = dict(row, evidence=json.dumps(row["evidence"]))
            copy.write_row([values[column] for column in columns])


def _close_earlier(
    session: Session, run: AuditRun, scope: ColumnElement[bool]
) -> tuple[int, int]:
    """Resolve earlier findings the run did not find again; supersede the rest."""
    newer = aliased(Finding)
    found_again = exists().where(
        newer.audit_run_id == run.id,
        newer.credential_id == Finding.credential_id,
        newer.rule == Finding.rule,
    )
    earlier = and_(
        Finding.status.in_(CARRIED_STATUSES), Finding.audit_run_id != run.id, scope
    )
    options = {"synchronize_session": False}
    resolved = session.execute(
        update(Finding)
        .where(earlier, ~found_again)
        .values(status=FindingStatus.RESOLVED, resolved_at=utcnow()),
        execution_options=options,
    )
    superseded = session.execute(
        update(Finding).where(earlier).values(status=FindingStatus.SUPERSEDED),
        execution_options=options,
    )
    return superseded.rowcount, resolved.rowcount  # type: ignore[attr-defined]
