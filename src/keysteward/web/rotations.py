"""The rotations page and the rotation figures of the home page."""

from datetime import timedelta
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Request
from fastapi.responses import HTMLResponse
from sqlalchemy import select
from sqlalchemy.orm import Session

from keysteward.clock import utcnow
from keysteward.db import Store
from keysteward.dependencies import get_store
from keysteward.operators.roles import Perm
from keysteward.rotation.models import ACTIVE_STATES, Rotation
from keysteward.vault.models import Secret
from keysteward.web.auth import Viewer, page_permission

router = APIRouter(include_in_schema=False)
DUE_WINDOW = timedelta(days=14)


def _row(rotation: Rotation, secret_name: str) -> dict[str, Any]:
    return {
        "id": rotation.id,
        "secret": secret_name,
        "credential_id": rotation.credential_id,
        "rotator": rotation.rotator,
        "state": rotation.state,
        "reason": rotation.reason,
        "requested_by": rotation.requested_by,
        "requested_at": rotation.requested_at,
        "due_at": rotation.due_at,
        "attempts": rotation.attempts,
        "last_error": rotation.last_error,
    }


def rotations_due(session: Session) -> list[dict[str, Any]]:
    """Return unfinished rotations due within DUE_WINDOW or without a due date."""
    horizon = utcnow() + DUE_WINDOW
    rows = session.execute(
        select(Rotation, Secret.name)
        .join(Secret, Rotation.secret_id == Secret.id)
        .where(Rotation.state.in_([str(state) for state in ACTIVE_STATES]))
        .where((Rotation.due_at.is_(None)) | (Rotation.due_at <= horizon))
        .order_by(Rotation.due_at, Rotation.id)
        .limit(20)
    )
    return [_row(rotation, name) for rotation, name in rows]


def rotations_of_credential(
    session: Session, credential_id: int
) -> list[dict[str, Any]]:
    rows = session.execute(
        select(Rotation, Secret.name)
        .join(Secret, Rotation.secret_id == Secret.id)
        .where(Rotation.credential_id == credential_id)
        .order_by(Rotation.id.desc())
        .limit(50)
    )
    return [_row(rotation, name) for rotation, name in rows]


@router.get("/rotations", response_class=HTMLResponse)
def rotations(
    request: Request,
    store: Annotated[Store, Depends(get_store)],
    viewer: Annotated[Viewer, Depends(page_permission(Perm.ROTATIONS_READ))],
) -> HTMLResponse:
    from keysteward.web.routes import render

    with store.session() as session:
        rows = session.execute(
            select(Rotation, Secret.name)
            .join(Secret, Rotation.secret_id == Secret.id)
            .order_by(Rotation.id.desc())
            .limit(500)
        )
        listed = [_row(rotation, name) for rotation, name in rows]
    return render(request, "rotations.html", viewer, rotations=listed)
