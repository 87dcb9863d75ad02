"""``/api/v1/systems``: the SaaS and internal systems credentials belong to."""

from datetime import datetime
from typing import Annotated

from fastapi import APIRouter, Depends, Query
from sqlalchemy import select

from keysteward.db import Store
from keysteward.dependencies import get_store, require
from keysteward.errors import NotFoundError
from keysteward.operators.roles import Perm
from keysteward.pagination import ApiModel, Page, PageParams, RowId, fetch_page
from keysteward.systems.models import System, SystemCategory, SystemStatus

router = APIRouter(tags=["systems"], dependencies=[Depends(require(Perm.SYSTEMS_READ))])


class SystemOut(ApiModel):
    id: int
    name: str
    category: str
    status: str
    owner_id: int | None
    rotation_max_age_days: int | None
    created_at: datetime


SORT = {"id": System.id, "name": System.name, "created_at": System.created_at}


@router.get("/systems", response_model=Page[SystemOut])
def list_systems(
    store: Annotated[Store, Depends(get_store)],
    params: Annotated[PageParams, Depends()],
    category: SystemCategory | None = None,
    status: SystemStatus | None = None,
    q: Annotated[str | None, Query(max_length=200)] = None,
) -> Page[SystemOut]:
    """List systems, filtered by category, status or name text."""
    query = select(System)
    if category is not None:
        query = query.where(System.category == category)
    if status is not None:
        query = query.where(System.status == status)
    if q:
        query = query.where(System.name.ilike(f"%{q}%"))
    with store.session() as session:
        return fetch_page(session, query, params, SORT, "id", SystemOut.model_validate)


@router.get("/systems/{system_id}", response_model=SystemOut)
def get_system(
    system_id: RowId, store: Annotated[Store, Depends(get_store)]
) -> SystemOut:
    with store.session() as session:
        system = session.get(System, system_id)
        if system is None:
            raise NotFoundError(f"system {system_id} not found")
        return SystemOut.model_validate(system)
