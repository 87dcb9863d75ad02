"""Queuing credential rotations from offboarding and access reviews.

A credential whose vault secret has a rotator goes to the rotation
workflow (``queue_rotation``), which drives the rotation to the end. Any
other credential, such as one not kept in the vault, gets a row in
``rotation_requests``: a to-do item for a person, with the reason.
"""

import logging
from dataclasses import dataclass

from sqlalchemy import select
from sqlalchemy.orm import Session

from keysteward.credentials.models import Credential
from keysteward.errors import InvalidInputError, NotFoundError
from keysteward.events.services import record_event
from keysteward.offboarding.models import RotationRequest, RotationRequestStatus
from keysteward.rotation.errors import (
    RotationRejectedError,
    RotatorConfigError,
    RotatorNotFoundError,
)
from keysteward.rotation.services import queue_rotation
from keysteward.vault.errors import SecretNotFoundError

log = logging.getLogger(__name__)

ROTATION_REQUEST_ACTION = "rotation.request"
# The rotation workflow rejects a credential with these errors, so it
# becomes a request instead.
NOT_ROTATABLE = (
    SecretNotFoundError,
    RotationRejectedError,
    RotatorConfigError,
    RotatorNotFoundError,
)


@dataclass(frozen=True)
class QueuedRotation:
    """A queued rotation: a workflow "rotation" or a "request" for a person."""

    kind: str
    id: int
    reason: str


def request_rotation(
    session: Session,
    credential: Credential,
    *,
    reason: str,
    origin: str,
    actor: str,
) -> QueuedRotation:
    """Queue a rotation of ``credential`` and record it as an event.

    Queuing twice is harmless because the workflow returns the unfinished
    rotation, and a credential with a queued request keeps that request.
    """
    reason = reason[:500]
    try:
        with session.begin_nested():
            rotation = queue_rotation(
                session, credential_id=credential.id, reason=reason, actor=actor
            )
        return QueuedRotation("rotation", rotation.id, reason)
    except NOT_ROTATABLE as exc:
        log.info(
            "credential goes to a rotation request: %s",
            type(exc).__name__,
            extra={"credential_id": credential.id, "origin": origin},
        )
    return QueuedRotation(
        "request", _add_request(session, credential, reason, origin, actor), reason
    )


def _add_request(
    session: Session, credential: Credential, reason: str, origin: str, actor: str
) -> int:
    queued = session.scalar(
        select(RotationRequest.id).where(
            RotationRequest.credential_id == credential.id,
            RotationRequest.status == RotationRequestStatus.QUEUED,
        )
    )
    if queued is not None:
        return queued
    request = RotationRequest(
        credential_id=credential.id, reason=reason, origin=origin, requested_by=actor
    )
    session.add(request)
    session.flush()
    record_event(
        session,
        actor=actor,
        action=ROTATION_REQUEST_ACTION,
        target_type="credential",
        target_id=credential.id,
        details={"reason": reason, "origin": origin, "request": request.id},
    )
    return request.id


def queued_rotations(session: Session) -> list[RotationRequest]:
    """Return every queued rotation request, oldest first."""
    query = (
        select(RotationRequest)
        .where(RotationRequest.status == RotationRequestStatus.QUEUED)
        .order_by(RotationRequest.id)
    )
    return list(session.scalars(query))


def finish_request(
    session: Session, request_id: int, *, status: RotationRequestStatus, actor: str
) -> RotationRequest:
    """Mark a queued request done or cancelled and record it as an event."""
    request = session.get(RotationRequest, request_id)
    if request is None:
        raise NotFoundError(
            f"rotation request {request_id} not found; "
            "`keysteward rotation-request list` shows the queued ones"
        )
    if request.status != RotationRequestStatus.QUEUED:
        raise InvalidInputError(
            f"rotation request {request_id} is already {request.status}"
        )
    request.status = status
    record_event(
        session,
        actor=actor,
        action=f"rotation.request.{status}",
        target_type="credential",
        target_id=request.credential_id,
        details={"request": request.id},
    )
    return request
