"""Reading stored audit runs and findings back for the reports."""

from sqlalchemy import func, select
from sqlalchemy.orm import Session, aliased

from keysteward.audit.config import RULE_IDS
from keysteward.audit.ranking import rank_key
from keysteward.audit.results import RankedFinding
from keysteward.credentials.models import Credential
from keysteward.errors import InvalidInputError, NotFoundError
from keysteward.findings.models import AuditRun, Finding, FindingStatus, Severity
from keysteward.identities.models import Person, ServiceAccount
from keysteward.systems.models import System

OPEN_STATUSES = (FindingStatus.OPEN, FindingStatus.ACCEPTED)


def latest_run(session: Session) -> AuditRun | None:
    return session.scalars(
        select(AuditRun).order_by(AuditRun.id.desc()).limit(1)
    ).first()


def list_findings(
    session: Session,
    *,
    severity: str | None = None,
    rule: str | None = None,
    run_id: int | None = None,
) -> list[RankedFinding]:
    """Return findings ranked most urgent first.

    Without ``run_id``: the open and accepted findings, which are the ones the
    latest run of each credential's scope left. With ``run_id``: every
    finding that run recorded, whatever its status now.
    Raises InvalidInputError for an unknown severity or rule and NotFoundError
    for an unknown run.
    """
    _check_filters(severity, rule)
    owner = aliased(Person)
    account = aliased(ServiceAccount)
    account_owner = aliased(Person)
    # The same accountable person the rules use: the owner, else the owner
    # of the service account that is the credential's holder.
    owner_email = func.coalesce(owner.email, account_owner.email)
    query = (
        select(Finding, Credential, System.name, owner_email)
        .join(Credential, Finding.credential_id == Credential.id)
        .outerjoin(System, Credential.system_id == System.id)
        .outerjoin(owner, Credential.owner_id == owner.id)
        .outerjoin(account, Credential.holder_service_account_id == account.id)
        .outerjoin(account_owner, account.owner_id == account_owner.id)
    )
    if run_id is None:
        query = query.where(Finding.status.in_(OPEN_STATUSES))
    else:
        if session.get(AuditRun, run_id) is None:
            raise NotFoundError(
                f"audit run {run_id} not found; `keysteward audit` lists the latest"
            )
        query = query.where(Finding.audit_run_id == run_id)
    if severity is not None:
        query = query.where(Finding.severity == severity)
    if rule is not None:
        query = query.where(Finding.rule == rule)

    rows = sorted(
        session.execute(query).all(),
        key=lambda row: rank_key(row[0].severity, row[0].score, row[1].id, row[0].rule),
    )
    return [
        RankedFinding(
            rank=rank,
            finding_id=finding.id,
            severity=finding.severity,
            score=finding.score,
            rule=finding.rule,
            title=finding.title,
            recommendation=finding.recommendation,
            evidence=finding.evidence,
            status=finding.status,
            credential_id=credential.id,
            credential=credential.name,
            system=system_name or "unknown",
            owner=owner_email or "",
            privilege=credential.privilege,
            source=credential.source,
            source_id=credential.source_id,
        )
        for rank, (finding, credential, system_name, owner_email) in enumerate(
            rows, start=1
        )
    ]


def _check_filters(severity: str | None, rule: str | None) -> None:
    severities = [str(value) for value in Severity]
    if severity is not None and severity not in severities:
        raise InvalidInputError(
            f"invalid severity {severity!r}; use one of {', '.join(severities)}"
        )
    if rule is not None and rule not in RULE_IDS:
        raise InvalidInputError(
            f"invalid rule {rule!r}; use one of {', '.join(RULE_IDS)}"
        )
