"""Queuing credential rotations from offboarding and access reviews.

NOTE: these requests live in this project's own ``rotation_requests`` table
until the rotation workflow publishes ``queue_rotation``; then this module
should hand requests to it instead.
"""

from sqlalchemy import select
from sqlalchemy.orm import Session

from keysteward.credentials.models import Credential
from keysteward.events.services import record_event
from keysteward.offboarding.models import RotationRequest, RotationRequestStatus

ROTATION_REQUEST_ACTION = "rotation.request"


def request_rotation(
    session: Session,
    credential: Credential,
    *,
    reason: str,
    origin: str,
    actor: str,
) -> RotationRequest:
    """Queue a rotation of ``credential`` and record it as an event.

    A credential with a queued request already keeps that request, so
    offboarding the same person twice queues nothing new.
    """
    queued = session.scalar(
        select(RotationRequest).where(
            RotationRequest.credential_id == credential.id,
            RotationRequest.status == RotationRequestStatus.QUEUED,
        )
    )
    if queued is not None:
        return queued
    request = RotationRequest(
        credential_id=credential.id,
        reason=reason[:500],
        origin=origin,
        requested_by=actor,
    )
    session.add(request)
    session.flush()
    record_event(
        session,
        actor=actor,
        action=ROTATION_REQUEST_ACTION,
        target_type="credential",
        target_id=credential.id,
        details={"reason": reason[:500], "origin": origin, "request": request.id},
    )
    return request


def queued_rotations(session: Session) -> list[RotationRequest]:
    """Return every queued rotation request, oldest first."""
    query = (
        select(RotationRequest)
        .where(RotationRequest.status == RotationRequestStatus.QUEUED)
        .order_by(RotationRequest.id)
    )
    return list(session.scalars(query))
