"""``/api/v1/rotations``: secret rotations and the state of each one."""

from datetime import datetime
from typing import Annotated

from fastapi import APIRouter, Depends
from sqlalchemy import select

from keysteward.db import Store
from keysteward.dependencies import get_store, require
from keysteward.errors import NotFoundError
from keysteward.operators.roles import Perm
from keysteward.pagination import (
    ApiModel,
    Page,
    PageParams,
    RowId,
    RowIdFilter,
    fetch_page,
)
from keysteward.rotation.models import Rotation, RotationState

router = APIRouter(
    tags=["rotations"], dependencies=[Depends(require(Perm.ROTATIONS_READ))]
)


class RotationOut(ApiModel):
    id: int
    secret_id: int
    credential_id: int | None
    rotator: str
    state: str
    reason: str
    requested_by: str
    requested_at: datetime
    updated_at: datetime
    old_version: int | None
    new_version: int | None
    due_at: datetime | None
    attempts: int
    last_error: str | None
    finished_at: datetime | None


SORT = {
    "id": Rotation.id,
    "requested_at": Rotation.requested_at,
    "due_at": Rotation.due_at,
    "updated_at": Rotation.updated_at,
}


@router.get("/rotations", response_model=Page[RotationOut])
def list_rotations(
    store: Annotated[Store, Depends(get_store)],
    params: Annotated[PageParams, Depends()],
    state: RotationState | None = None,
    secret_id: RowIdFilter = None,
    credential_id: RowIdFilter = None,
) -> Page[RotationOut]:
    """List rotations, newest first by default."""
    query = select(Rotation)
    if state is not None:
        query = query.where(Rotation.state == state)
    if secret_id is not None:
        query = query.where(Rotation.secret_id == secret_id)
    if credential_id is not None:
        query = query.where(Rotation.credential_id == credential_id)
    with store.session() as session:
        return fetch_page(
            session, query, params, SORT, "-id", RotationOut.model_validate
        )


@router.get("/rotations/{rotation_id}", response_model=RotationOut)
def get_rotation(
    rotation_id: RowId, store: Annotated[Store, Depends(get_store)]
) -> RotationOut:
    with store.session() as session:
        rotation = session.get(Rotation, rotation_id)
        if rotation is None:
            raise NotFoundError(f"rotation {rotation_id} not found")
        return RotationOut.model_validate(rotation)
