"""``/api/v1/discovery/hits``: where scans found credentials in files and history."""

from datetime import datetime
from typing import Annotated

from fastapi import APIRouter, Depends, Query
from sqlalchemy import select

from keysteward.db import Store
from keysteward.dependencies import get_store, require
from keysteward.discovery.models import DiscoveryHit
from keysteward.operators.roles import Perm
from keysteward.pagination import ApiModel, Page, PageParams, RowIdFilter, fetch_page

router = APIRouter(
    tags=["discovery"], dependencies=[Depends(require(Perm.DISCOVERY_READ))]
)


class DiscoveryHitOut(ApiModel):
    id: int
    rule: str
    path: str
    line: int
    pointer: str | None
    commit: str | None
    author: str | None
    credential_id: int | None
    first_seen_at: datetime
    last_seen_at: datetime


SORT = {
    "id": DiscoveryHit.id,
    "path": DiscoveryHit.path,
    "rule": DiscoveryHit.rule,
    "first_seen_at": DiscoveryHit.first_seen_at,
    "last_seen_at": DiscoveryHit.last_seen_at,
}


@router.get("/discovery/hits", response_model=Page[DiscoveryHitOut])
def list_hits(
    store: Annotated[Store, Depends(get_store)],
    params: Annotated[PageParams, Depends()],
    rule: Annotated[str | None, Query(max_length=100)] = None,
    credential_id: RowIdFilter = None,
    path: Annotated[
        str | None, Query(max_length=500, description="Text the path contains.")
    ] = None,
) -> Page[DiscoveryHitOut]:
    """List discovery hits; the hit's secret is never stored, only its fingerprint."""
    query = select(DiscoveryHit)
    if rule is not None:
        query = query.where(DiscoveryHit.rule == rule)
    if credential_id is not None:
        query = query.where(DiscoveryHit.credential_id == credential_id)
    if path:
        query = query.where(DiscoveryHit.path.contains(path, autoescape=True))
    with store.session() as session:
        return fetch_page(
            session, query, params, SORT, "id", DiscoveryHitOut.model_validate
        )
