"""Roles, assignments, policy plan and apply, and explained access checks."""

from datetime import datetime
from typing import Annotated, Any

from fastapi import APIRouter, Body, Depends, HTTPException, Query, Request
from pydantic import Field

from keysteward.authz.engine import check
from keysteward.authz.errors import StalePolicyError
from keysteward.authz.permissions import parse_principal, parse_request
from keysteward.authz.policy import parse_policy_text
from keysteward.authz.services import apply_policy, load_store_policy, plan_policy
from keysteward.db import Store
from keysteward.dependencies import client_address, get_store, request_id_of, require
from keysteward.events.services import record_event
from keysteward.operators.roles import Perm
from keysteward.pagination import ApiModel, Page, PageParams, page_of_list
from keysteward.tokens.principals import Principal
from keysteward.transactions import run_transaction

router = APIRouter(tags=["authorization"])

MAX_POLICY_BYTES = 1_000_000


class RoleOut(ApiModel):
    name: str
    description: str | None
    permissions: list[str]
    includes: list[str]


class AssignmentOut(ApiModel):
    principal: str
    role: str
    expires_at: datetime | None


class PolicyBody(ApiModel):
    policy: str = Field(
        max_length=MAX_POLICY_BYTES, description="The policy file's YAML text."
    )
    force: bool = Field(
        default=False,
        description="Apply even though the store changed since the file's base.",
    )


class PlanOut(ApiModel):
    store_digest: str
    file_digest: str
    counts: dict[str, int]
    changes: list[dict[str, Any]]
    applied: bool = False


class CheckBody(ApiModel):
    principal: str = Field(
        max_length=400, description="service_account:NAME, person:EMAIL or group:NAME"
    )
    permission: str = Field(max_length=700, description="system:resource:action")


class CheckOut(ApiModel):
    decision: str
    principal: str
    permission: str
    reason: str
    grant: dict[str, Any] | None = None
    deny: dict[str, Any] | None = None


@router.get(
    "/roles",
    response_model=Page[RoleOut],
    dependencies=[Depends(require(Perm.ROLES_READ))],
)
def list_roles(
    store: Annotated[Store, Depends(get_store)],
    params: Annotated[PageParams, Depends()],
    q: Annotated[str | None, Query(max_length=200)] = None,
) -> Page[RoleOut]:
    """List the stored roles by name, with their permissions."""
    if params.sort not in (None, "name", "-name"):
        raise HTTPException(422, f"invalid sort field {params.sort!r}; sort by name")
    with store.session() as session:
        policy = load_store_policy(session)
    roles = [
        RoleOut(
            name=spec.name,
            description=spec.description,
            permissions=list(spec.permissions),
            includes=list(spec.includes),
        )
        for spec in sorted(policy.roles.values(), key=lambda spec: spec.name)
        if not q or q in spec.name
    ]
    if params.sort == "-name":
        roles.reverse()
    return page_of_list(roles, params)


@router.get(
    "/assignments",
    response_model=Page[AssignmentOut],
    dependencies=[Depends(require(Perm.ROLES_READ))],
)
def list_assignments(
    store: Annotated[Store, Depends(get_store)],
    params: Annotated[PageParams, Depends()],
    principal: Annotated[str | None, Query(max_length=400)] = None,
    role: Annotated[str | None, Query(max_length=200)] = None,
) -> Page[AssignmentOut]:
    """List role assignments, sorted by principal then role."""
    if params.sort not in (None, "principal", "role"):
        raise HTTPException(
            422, f"invalid sort field {params.sort!r}; sort by principal or role"
        )
    with store.session() as session:
        policy = load_store_policy(session)
    rows = [
        AssignmentOut(principal=a.principal, role=a.role, expires_at=a.expires_at)
        for a in policy.assignments
        if (principal is None or a.principal == principal)
        and (role is None or a.role == role)
    ]
    if params.sort == "role":
        rows.sort(key=lambda row: (row.role, row.principal))
    else:
        rows.sort(key=lambda row: (row.principal, row.role))
    return page_of_list(rows, params)


@router.post(
    "/policy/plan",
    response_model=PlanOut,
    dependencies=[Depends(require(Perm.POLICY_READ))],
)
def plan(
    body: Annotated[PolicyBody, Body()], store: Annotated[Store, Depends(get_store)]
) -> PlanOut:
    """Compare a policy file with the stored policy; change nothing."""
    parsed = parse_policy_text(body.policy, source="request")
    with store.session() as session:
        result = plan_policy(session, parsed.policy)
    return PlanOut(**result.to_dict())


@router.post("/policy/apply", response_model=PlanOut)
def apply(
    body: Annotated[PolicyBody, Body()],
    principal: Annotated[Principal, Depends(require(Perm.POLICY_WRITE))],
    store: Annotated[Store, Depends(get_store)],
) -> PlanOut:
    """Make the stored policy equal the file, in one transaction.

    Returns 409 when the store changed since the file's ``base`` digest.
    """
    parsed = parse_policy_text(body.policy, source="request")
    try:
        result = run_transaction(
            store,
            lambda session: apply_policy(
                session,
                parsed.policy,
                base=parsed.base,
                force=body.force,
                actor=principal.label,
            ),
        )
    except StalePolicyError as exc:
        raise HTTPException(409, str(exc)) from None
    return PlanOut(**result.to_dict(), applied=True)


@router.post("/checks", response_model=CheckOut)
def check_access(
    body: CheckBody,
    request: Request,
    caller: Annotated[Principal, Depends(require(Perm.CHECKS_READ))],
    store: Annotated[Store, Depends(get_store)],
) -> CheckOut:
    """Decide whether a principal has a permission, and explain why."""
    parse_principal(body.principal)
    parse_request(body.permission)
    decision = check(store, body.principal, body.permission)
    run_transaction(
        store,
        lambda session: record_event(
            session,
            actor=caller.label,
            action="authz.check",
            target_type="principal",
            target_id=body.principal[:200],
            outcome=decision.outcome,
            source_address=client_address(request),
            request_id=request_id_of(request),
            details={"permission": body.permission, "reason": decision.reason},
        ),
    )
    return CheckOut(**decision.to_dict())
