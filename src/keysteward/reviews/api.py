"""``/api/v1/reviews``: access-review campaigns, their items and decisions."""

from datetime import date, datetime
from typing import Annotated

from fastapi import APIRouter, Depends, Query
from pydantic import Field
from sqlalchemy.orm import Session

from keysteward.db import Store
from keysteward.dependencies import get_store, require
from keysteward.operators.roles import Perm
from keysteward.pagination import ApiModel, Page, PageParams, RowId, page_of_list
from keysteward.reviews.models import Decision
from keysteward.reviews.services import (
    accept_recommended,
    decide_item,
    find_item,
    list_campaigns,
    list_items,
)
from keysteward.tokens.principals import Principal
from keysteward.transactions import run_transaction

router = APIRouter(tags=["reviews"])


class CampaignOut(ApiModel):
    id: int
    name: str
    status: str
    started_at: datetime
    due_on: date
    items: int
    open: int
    decisions: dict[str, int]


class ReviewItemOut(ApiModel):
    id: int
    campaign_id: int
    subject_type: str
    subject_id: int
    subject_label: str
    reviewee: str | None
    reviewer: str
    recommendation: str
    recommendation_reason: str
    decision: str | None
    comment: str | None
    decided_by: str | None
    decided_at: datetime | None


class DecisionBody(ApiModel):
    decision: Decision
    comment: str | None = Field(default=None, max_length=1000)


class AcceptBody(ApiModel):
    reviewer: str | None = Field(
        default=None,
        max_length=320,
        description="Accept only this reviewer's items; all undecided items if unset.",
    )


class AcceptOut(ApiModel):
    decided: dict[str, int]


@router.get(
    "/reviews",
    response_model=Page[CampaignOut],
    dependencies=[Depends(require(Perm.REVIEWS_READ))],
)
def get_campaigns(
    store: Annotated[Store, Depends(get_store)],
    params: Annotated[PageParams, Depends()],
    status: Annotated[str | None, Query(max_length=20)] = None,
) -> Page[CampaignOut]:
    """List campaigns, newest first, with their decision counts."""
    with store.session() as session:
        rows = [
            CampaignOut(**row)
            for row in list_campaigns(session)
            if status is None or row["status"] == status
        ]
    return page_of_list(rows, params)


@router.get(
    "/reviews/{campaign_id}/items",
    response_model=Page[ReviewItemOut],
    dependencies=[Depends(require(Perm.REVIEWS_READ))],
)
def get_items(
    campaign_id: RowId,
    store: Annotated[Store, Depends(get_store)],
    params: Annotated[PageParams, Depends()],
    reviewer: Annotated[str | None, Query(max_length=320)] = None,
    undecided: bool = False,
) -> Page[ReviewItemOut]:
    """List a campaign's items in id order, optionally one reviewer's or undecided."""
    with store.session() as session:
        rows = [
            ReviewItemOut.model_validate(item)
            for item in list_items(
                session,
                campaign_id=campaign_id,
                reviewer=reviewer,
                undecided_only=undecided,
            )
        ]
    return page_of_list(rows, params)


@router.post("/reviews/items/{item_id}/decision", response_model=ReviewItemOut)
def post_decision(
    item_id: RowId,
    body: DecisionBody,
    principal: Annotated[Principal, Depends(require(Perm.REVIEWS_WRITE))],
    store: Annotated[Store, Depends(get_store)],
) -> ReviewItemOut:
    """Record and apply one decision; a decided item cannot change."""

    def work(session: Session) -> ReviewItemOut:
        item = find_item(session, item_id)
        decided = decide_item(
            session,
            item,
            body.decision,
            actor=principal.label,
            comment=body.comment,
            decided_by=principal.name,
        )
        return ReviewItemOut.model_validate(decided)

    return run_transaction(store, work)


@router.post("/reviews/{campaign_id}/accept", response_model=AcceptOut)
def post_accept(
    campaign_id: RowId,
    body: AcceptBody,
    principal: Annotated[Principal, Depends(require(Perm.REVIEWS_WRITE))],
    store: Annotated[Store, Depends(get_store)],
) -> AcceptOut:
    """Decide every undecided item (of one reviewer) as recommended."""
    applied = run_transaction(
        store,
        lambda session: accept_recommended(
            session,
            actor=principal.label,
            campaign_id=campaign_id,
            reviewer=body.reviewer,
        ),
    )
    return AcceptOut(decided=dict(applied))
