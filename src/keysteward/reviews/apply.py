"""Carrying out a review decision and recording the proof.

Each application records one ``review.apply`` event whose details hold the
state after the change. The item keeps that event's id and state as proof,
so an auditor can check the removal in the tamper-evident event log.
"""

from dataclasses import replace
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from keysteward.authz.policy import AssignmentSpec, RoleSpec
from keysteward.authz.services import apply_policy, load_store_policy, policy_digest
from keysteward.clock import utcnow
from keysteward.credentials.models import Credential, CredentialStatus
from keysteward.errors import InvalidInputError
from keysteward.events.services import record_event
from keysteward.identities.models import ServiceAccount, ServiceAccountStatus
from keysteward.offboarding.rotation import request_rotation
from keysteward.reviews.models import Decision, ReviewItem, SubjectType
from keysteward.tokens.models import ApiToken
from keysteward.tokens.principals import PrincipalType
from keysteward.tokens.services import revoke_api_token

REVIEW_ORIGIN = "access_review"
# Decisions each kind of item accepts.
ALLOWED_DECISIONS = {
    SubjectType.CREDENTIAL: (Decision.KEEP, Decision.REVOKE, Decision.ROTATE),
    SubjectType.SERVICE_ACCOUNT: (Decision.KEEP, Decision.REVOKE),
    SubjectType.ROLE_ASSIGNMENT: (Decision.KEEP, Decision.REVOKE, Decision.REDUCE),
}


def check_decision(item: ReviewItem, decision: Decision) -> None:
    """Raise InvalidInputError when ``decision`` cannot apply to the item."""
    allowed = ALLOWED_DECISIONS[SubjectType(item.subject_type)]
    if decision not in allowed:
        raise InvalidInputError(
            f"decision {decision.value!r} does not apply to {item.subject_type} "
            f"item {item.id}; choose one of {', '.join(d.value for d in allowed)}"
        )
    if decision == Decision.REDUCE and not item.recommended_permissions:
        raise InvalidInputError(
            f"item {item.id} has no used permissions to reduce to; choose revoke "
            "to remove the role or keep"
        )


def apply_decision(session: Session, item: ReviewItem, actor: str) -> None:
    """Carry out the item's decision and store the proof on the item."""
    decision = Decision(item.decision or Decision.KEEP)
    subject = SubjectType(item.subject_type)
    if subject == SubjectType.CREDENTIAL:
        state = _apply_to_credential(session, item, decision, actor)
    elif subject == SubjectType.SERVICE_ACCOUNT:
        state = _apply_to_account(session, item, decision, actor)
    else:
        state = _apply_to_assignment(session, item, decision, actor)
    event = record_event(
        session,
        actor=actor,
        action="review.apply",
        target_type="review_item",
        target_id=item.id,
        details={
            "campaign": item.campaign_id,
            "subject": item.subject_label,
            "decision": decision.value,
            "state_after": state,
        },
    )
    session.flush()
    item.applied_at = utcnow()
    item.proof = {"event_id": event.id, "state_after": state}


def _apply_to_credential(
    session: Session, item: ReviewItem, decision: Decision, actor: str
) -> dict[str, Any]:
    credential = session.get(Credential, item.subject_id)
    if credential is None:
        return {"credential": "deleted since the snapshot"}
    state: dict[str, Any] = {}
    if decision == Decision.REVOKE and credential.status != CredentialStatus.REVOKED:
        credential.status = CredentialStatus.REVOKED
        record_event(
            session,
            actor=actor,
            action="credential.revoke",
            target_type="credential",
            target_id=credential.id,
            details={"reason": f"access review item {item.id}"},
        )
    if decision in (Decision.REVOKE, Decision.ROTATE):
        # A key marked revoked here still works at its provider until it is
        # replaced there, so both decisions queue a rotation.
        queued = request_rotation(
            session,
            credential,
            reason=f"access review item {item.id}: {decision.value}",
            origin=REVIEW_ORIGIN,
            actor=actor,
        )
        state["rotation"] = {"queued_as": queued.kind, "id": queued.id}
    state["status"] = credential.status
    return state


def _apply_to_account(
    session: Session, item: ReviewItem, decision: Decision, actor: str
) -> dict[str, Any]:
    account = session.get(ServiceAccount, item.subject_id)
    if account is None:
        return {"service_account": "deleted since the snapshot"}
    if decision != Decision.REVOKE:
        return {"status": account.status}
    tokens = session.scalars(
        select(ApiToken.id).where(
            ApiToken.principal_type == PrincipalType.SERVICE_ACCOUNT,
            ApiToken.principal_id == account.id,
            ApiToken.revoked_at.is_(None),
        )
    ).all()
    for token_id in tokens:
        revoke_api_token(session, token_id, actor=actor)
    if account.status != ServiceAccountStatus.DISABLED:
        account.status = ServiceAccountStatus.DISABLED
        record_event(
            session,
            actor=actor,
            action="service_account.disable",
            target_type="service_account",
            target_id=account.name,
            details={"reason": f"access review item {item.id}"},
        )
    return {"status": account.status, "tokens_revoked": sorted(tokens)}


def _apply_to_assignment(
    session: Session, item: ReviewItem, decision: Decision, actor: str
) -> dict[str, Any]:
    if decision == Decision.KEEP:
        return {"assignment": "kept"}
    principal = str(item.facts["principal"])
    role = str(item.facts["role"])
    policy = load_store_policy(session)
    current = [
        a for a in policy.assignments if a.principal == principal and a.role == role
    ]
    if not current:
        return {"assignment": "already removed"}
    remaining = tuple(a for a in policy.assignments if a not in current)
    roles = dict(policy.roles)
    state: dict[str, Any] = {"removed_role": role}
    if decision == Decision.REDUCE:
        reduced = reduced_role_name(role, principal)
        roles[reduced] = RoleSpec(
            name=reduced,
            permissions=tuple(sorted(item.recommended_permissions)),
            description=f"{role} reduced to observed use by access review",
        )
        remaining += (AssignmentSpec(principal, reduced, current[0].expires_at),)
        state["assigned_role"] = reduced
        state["permissions"] = sorted(item.recommended_permissions)
    desired = replace(policy, roles=roles, assignments=remaining)
    apply_policy(session, desired, base=policy_digest(policy), actor=actor)
    return state


def reduced_role_name(role: str, principal: str) -> str:
    """Return the name of the role a reduced assignment gets, at most 200 chars."""
    name = principal.partition(":")[2]
    return f"{role}.reduced.{name}"[:200]
