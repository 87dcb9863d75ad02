"""``/api/v1/events``: the append-only event log."""

from datetime import datetime
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Query
from sqlalchemy import select

from keysteward.clock import as_utc
from keysteward.db import Store
from keysteward.dependencies import get_store, require
from keysteward.events.models import Event
from keysteward.operators.roles import Perm
from keysteward.pagination import ApiModel, Page, PageParams, fetch_page

router = APIRouter(tags=["events"], dependencies=[Depends(require(Perm.EVENTS_READ))])


class EventOut(ApiModel):
    sequence: int
    occurred_at: datetime
    actor: str
    action: str
    target_type: str | None
    target_id: str | None
    outcome: str
    source_address: str | None
    request_id: str | None
    details: dict[str, Any]
    digest: str


SORT = {"sequence": Event.sequence, "occurred_at": Event.occurred_at}
Text = Annotated[str | None, Query(max_length=200)]


@router.get("/events", response_model=Page[EventOut])
def list_events(
    store: Annotated[Store, Depends(get_store)],
    params: Annotated[PageParams, Depends()],
    actor: Text = None,
    action: Text = None,
    outcome: Annotated[str | None, Query(max_length=20)] = None,
    target_type: Annotated[str | None, Query(max_length=50)] = None,
    target_id: Text = None,
    request_id: Annotated[str | None, Query(max_length=100)] = None,
    since: datetime | None = None,
) -> Page[EventOut]:
    """List events newest first; every filter matches exactly."""
    query = select(Event)
    filters = {
        Event.actor: actor,
        Event.action: action,
        Event.outcome: outcome,
        Event.target_type: target_type,
        Event.target_id: target_id,
        Event.request_id: request_id,
    }
    for column, value in filters.items():
        if value is not None:
            query = query.where(column == value)
    if since is not None:
        query = query.where(Event.occurred_at >= as_utc(since))
    with store.session() as session:
        return fetch_page(
            session, query, params, SORT, "-sequence", EventOut.model_validate
        )
