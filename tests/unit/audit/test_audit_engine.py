"""Audit runs: stored findings, re-runs, scope, events and the ranking order."""

from datetime import date

import pytest
from sqlalchemy import select

from common.audit_inventory import AS_OF, InventoryBuilder, days_ago
from keysteward.audit.acceptance import accept_finding
from keysteward.audit.config import AuditConfig
from keysteward.audit.engine import AuditResult, run_audit
from keysteward.audit.queries import list_findings
from keysteward.credentials.models import Credential
from keysteward.db import Store
from keysteward.errors import InvalidInputError, NotFoundError
from keysteward.events.models import Event
from keysteward.findings.models import AuditRun, Finding


def _audit(store: Store, system: str | None = None) -> AuditResult:
    return run_audit(store, as_of=AS_OF, config=AuditConfig(), system=system)


def _statuses(store: Store) -> dict[tuple[int, int | None, str], str]:
    with store.session() as session:
        rows = session.scalars(select(Finding)).all()
        return {
            (row.audit_run_id or 0, row.credential_id, row.rule): row.status
            for row in rows
        }


def test_findings_stored_with_run(store: Store) -> None:
    with store.session() as session:
        key = InventoryBuilder(session).credential(created_at=days_ago(200)).id

    result = _audit(store)

    with store.session() as session:
        run = session.get(AuditRun, result.summary.run_id)
        assert run is not None
        assert run.credentials_evaluated == 1
        assert run.findings_count == 1
        assert run.finished_at is not None
        assert run.parameters["as_of"] == AS_OF.isoformat()
        stored = session.scalars(select(Finding)).one()
    assert stored.credential_id == key
    assert stored.rule == "rotation_overdue"
    assert stored.severity == "medium"
    assert stored.score == result.findings[0].score
    assert stored.evidence["age_days"] == 200
    assert stored.status == "open"


def test_rerun_resolves_fixed_findings(store: Store) -> None:
    with store.session() as session:
        builder = InventoryBuilder(session)
        fixed = builder.credential(created_at=days_ago(200)).id
        still = builder.credential(last_used_at=days_ago(150)).id
    first = _audit(store).summary.run_id

    with store.session() as session:
        credential = session.get(Credential, fixed)
        assert credential is not None
        credential.last_rotated_at = days_ago(1)
    second = _audit(store)

    statuses = _statuses(store)
    assert statuses[(first or 0, fixed, "rotation_overdue")] == "resolved"
    assert statuses[(first or 0, still, "unused")] == "superseded"
    assert statuses[(second.summary.run_id or 0, still, "unused")] == "open"
    assert second.summary.resolved == 1
    assert second.superseded == 1
    with store.session() as session:
        assert len(session.scalars(select(AuditRun)).all()) == 2
        resolved = session.scalars(
            select(Finding).where(Finding.status == "resolved")
        ).one()
        assert resolved.resolved_at is not None


def test_revoked_credential_findings_resolved(store: Store) -> None:
    with store.session() as session:
        key = InventoryBuilder(session).credential(created_at=days_ago(200)).id
    first = _audit(store).summary.run_id

    with store.session() as session:
        credential = session.get(Credential, key)
        assert credential is not None
        credential.status = "revoked"
    _audit(store)

    assert _statuses(store)[(first or 0, key, "rotation_overdue")] == "resolved"


def test_system_run_keeps_other_systems(store: Store) -> None:
    with store.session() as session:
        builder = InventoryBuilder(session)
        aws_key = builder.credential(system="aws", created_at=days_ago(200)).id
        github_key = builder.credential(system="github", created_at=days_ago(200)).id
    first = _audit(store).summary.run_id

    result = _audit(store, system="aws")

    assert [f.credential_id for f in result.findings] == [aws_key]
    statuses = _statuses(store)
    assert statuses[(first or 0, github_key, "rotation_overdue")] == "open"
    assert statuses[(first or 0, aws_key, "rotation_overdue")] == "superseded"


def test_unknown_system_not_found(store: Store) -> None:
    with store.session() as session:
        InventoryBuilder(session).credential(system="aws")
    with pytest.raises(NotFoundError) as raised:
        _audit(store, system="asw")
    assert "'asw'" in str(raised.value)
    assert "aws" in str(raised.value)
    with store.session() as session:
        assert session.scalars(select(AuditRun)).all() == []


def test_accepted_finding_stays_accepted(store: Store) -> None:
    with store.session() as session:
        key = InventoryBuilder(session).credential(created_at=days_ago(200)).id
    _audit(store)
    with store.session() as session:
        finding = session.scalars(select(Finding)).one()
        finding.status = "accepted"

    second = _audit(store)

    assert [f.status for f in second.findings] == ["accepted"]
    with store.session() as session:
        current = list_findings(session)
    assert [(f.credential_id, f.status) for f in current] == [(key, "accepted")]


def test_each_run_records_event(store: Store) -> None:
    with store.session() as session:
        InventoryBuilder(session).credential(created_at=days_ago(200))
    first = _audit(store).summary.run_id
    second = _audit(store).summary.run_id

    with store.session() as session:
        events = session.scalars(
            select(Event).where(Event.action == "audit.run").order_by(Event.id)
        ).all()
    assert [event.target_id for event in events] == [str(first), str(second)]
    assert events[0].details["credentials_evaluated"] == 1
    assert events[0].details["findings"]["medium"] == 1
    assert events[1].details["superseded"] == 1


def test_departed_admin_ranks_above_low(store: Store) -> None:
    with store.session() as session:
        builder = InventoryBuilder(session)
        gone = builder.person("Bob Former", departed_on=date(2026, 8, 15))
        # Created first, so a tie on anything but urgency would list it first.
        low = builder.credential(scopes=[], privilege="unknown").id
        admin = builder.credential(
            owner_id=gone.id, privilege="admin", scopes=["admin:org"]
        ).id

    findings = _audit(store).findings

    assert findings[0].credential_id == admin
    assert findings[0].rule == "owner_departed"
    assert findings[0].severity == "critical"
    assert findings[-1].credential_id == low
    assert findings[-1].severity == "low"
    assert findings[0].score > findings[-1].score
    assert [f.rank for f in findings] == list(range(1, len(findings) + 1))


def test_score_grows_with_staleness(store: Store) -> None:
    with store.session() as session:
        builder = InventoryBuilder(session)
        young = builder.credential(created_at=days_ago(100)).id
        old = builder.credential(created_at=days_ago(170)).id

    scores = {f.credential_id: f.score for f in _audit(store).findings}

    assert scores[old] > scores[young]


def test_list_findings_filters(store: Store) -> None:
    with store.session() as session:
        builder = InventoryBuilder(session)
        builder.credential(created_at=days_ago(200))
        builder.credential(scopes=[], privilege="unknown")
    run_id = _audit(store).summary.run_id

    with store.session() as session:
        assert [f.rule for f in list_findings(session, severity="low")] == [
            "unknown_access"
        ]
        assert [f.rule for f in list_findings(session, rule="rotation_overdue")] == [
            "rotation_overdue"
        ]
        assert len(list_findings(session, run_id=run_id)) == 2
        with pytest.raises(InvalidInputError):
            list_findings(session, rule="stale")
        with pytest.raises(InvalidInputError):
            list_findings(session, severity="urgent")
        with pytest.raises(NotFoundError):
            list_findings(session, run_id=999)


def test_accept_finding_records_event(store: Store) -> None:
    with store.session() as session:
        InventoryBuilder(session).credential(created_at=days_ago(200))
    finding_id = _audit(store).findings[0].finding_id
    assert finding_id is not None

    with store.session() as session:
        accept_finding(session, finding_id, "rotates with the March release", "cli:ops")

    with store.session() as session:
        finding = session.get(Finding, finding_id)
        event = session.scalars(
            select(Event).where(Event.action == "finding.accept")
        ).one()
    assert finding is not None
    assert finding.status == "accepted"
    assert finding.evidence["acceptance"]["by"] == "cli:ops"
    assert event.target_id == str(finding_id)
    assert event.actor == "cli:ops"
