"""``/api/v1/findings`` and ``/api/v1/audit-runs``: what the audit found."""

from datetime import datetime
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Query, Request
from pydantic import Field
from sqlalchemy import select

from keysteward.audit.config import load_audit_config
from keysteward.audit.engine import run_audit
from keysteward.audit.queries import list_findings
from keysteward.clock import as_utc, utcnow
from keysteward.db import Store
from keysteward.dependencies import get_store, require
from keysteward.errors import NotFoundError
from keysteward.findings.models import AuditRun
from keysteward.operators.roles import Perm
from keysteward.pagination import (
    ApiModel,
    Page,
    PageParams,
    RowId,
    RowIdFilter,
    fetch_page,
    page_of_list,
)
from keysteward.tokens.principals import Principal

router = APIRouter(tags=["audit"])


class FindingOut(ApiModel):
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


class AuditRunOut(ApiModel):
    id: int
    started_at: datetime
    finished_at: datetime | None
    credentials_evaluated: int
    findings_count: int
    as_of: datetime | None


@router.get(
    "/findings",
    response_model=Page[FindingOut],
    dependencies=[Depends(require(Perm.FINDINGS_READ))],
)
def get_findings(
    store: Annotated[Store, Depends(get_store)],
    params: Annotated[PageParams, Depends()],
    severity: Annotated[str | None, Query(max_length=20)] = None,
    rule: Annotated[str | None, Query(max_length=100)] = None,
    run_id: RowIdFilter = None,
    system: Annotated[str | None, Query(max_length=100)] = None,
    owner: Annotated[str | None, Query(max_length=320)] = None,
) -> Page[FindingOut]:
    """List findings ranked most urgent first (``sort=rank``, the only order).

    Without ``run_id`` these are the open and accepted findings.
    """
    if params.sort not in (None, "rank"):
        from fastapi import HTTPException

        raise HTTPException(422, f"invalid sort field {params.sort!r}; sort by rank")
    with store.session() as session:
        ranked = list_findings(session, severity=severity, rule=rule, run_id=run_id)
    rows = [
        FindingOut(**finding.as_dict())
        for finding in ranked
        if (system is None or finding.system == system)
        and (owner is None or finding.owner == owner)
    ]
    return page_of_list(rows, params)


RUN_SORT = {"id": AuditRun.id, "started_at": AuditRun.started_at}


@router.get(
    "/audit-runs",
    response_model=Page[AuditRunOut],
    dependencies=[Depends(require(Perm.AUDIT_READ))],
)
def list_audit_runs(
    store: Annotated[Store, Depends(get_store)],
    params: Annotated[PageParams, Depends()],
) -> Page[AuditRunOut]:
    """List audit runs, newest first by default."""
    with store.session() as session:
        return fetch_page(
            session,
            select(AuditRun),
            params,
            RUN_SORT,
            "-id",
            AuditRunOut.model_validate,
        )


class AuditRunRequest(ApiModel):
    as_of: datetime | None = Field(
        default=None, description="Audit as of this time; now when unset."
    )
    system: str | None = Field(
        default=None, max_length=100, description="Audit only this system."
    )


@router.post("/audit-runs", response_model=AuditRunOut, status_code=201)
def start_audit_run(
    request: Request,
    body: AuditRunRequest,
    principal: Annotated[Principal, Depends(require(Perm.AUDIT_WRITE))],
    store: Annotated[Store, Depends(get_store)],
) -> AuditRunOut:
    """Audit the inventory now, as the CLI's ``keysteward audit`` does.

    The run and its findings are stored in one transaction; list the
    findings with ``GET /findings?run_id=ID``.
    """
    settings = request.app.state.settings
    config = load_audit_config(settings)
    moment = as_utc(body.as_of) or utcnow()
    result = run_audit(
        store,
        as_of=moment,
        config=config,
        system=body.system,
        actor=principal.label,
    )
    with store.session() as session:
        run = session.get(AuditRun, result.summary.run_id)
        if run is None:
            raise NotFoundError(f"audit run {result.summary.run_id} not found")
        return AuditRunOut.model_validate(run)


@router.get(
    "/audit-runs/{run_id}",
    response_model=AuditRunOut,
    dependencies=[Depends(require(Perm.AUDIT_READ))],
)
def get_audit_run(
    run_id: RowId, store: Annotated[Store, Depends(get_store)]
) -> AuditRunOut:
    with store.session() as session:
        run = session.get(AuditRun, run_id)
        if run is None:
            raise NotFoundError(f"audit run {run_id} not found")
        return AuditRunOut.model_validate(run)
