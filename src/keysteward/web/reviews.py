"""The access-review pages: campaigns, the reviewer's one-page flow, bulk accept."""

from typing import Annotated, Any
from urllib.parse import urlencode

from fastapi import APIRouter, Depends, Form, Query, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from sqlalchemy.orm import Session

from keysteward.db import Store
from keysteward.dependencies import get_store
from keysteward.operators.roles import Perm
from keysteward.reviews.models import Decision
from keysteward.reviews.services import (
    accept_recommended,
    decide_item,
    find_campaign,
    find_item,
    list_campaigns,
    list_items,
)
from keysteward.transactions import run_transaction
from keysteward.web.auth import Viewer, check_csrf, page_permission

router = APIRouter(include_in_schema=False)
StoreDep = Annotated[Store, Depends(get_store)]


def review_progress(session: Session) -> list[dict[str, Any]]:
    """Return the open campaigns with their decided and total item counts."""
    progress = []
    for campaign in list_campaigns(session):
        if campaign["status"] != "open":
            continue
        decided = campaign["items"] - campaign["open"]
        progress.append({**campaign, "decided": decided})
    return progress


@router.get("/reviews", response_class=HTMLResponse)
def campaigns(
    request: Request,
    store: StoreDep,
    viewer: Annotated[Viewer, Depends(page_permission(Perm.REVIEWS_READ))],
) -> HTMLResponse:
    from keysteward.web.routes import render

    with store.session() as session:
        rows = list_campaigns(session)
    return render(request, "reviews.html", viewer, campaigns=rows)


@router.get("/reviews/{campaign_id}", response_class=HTMLResponse)
def campaign_page(
    request: Request,
    campaign_id: int,
    store: StoreDep,
    viewer: Annotated[Viewer, Depends(page_permission(Perm.REVIEWS_READ))],
    reviewer: Annotated[str | None, Query(max_length=320)] = None,
    done: Annotated[int | None, Query(ge=0, le=1_000_000)] = None,
) -> HTMLResponse:
    """Show one reviewer's items (the viewer's own by default) on one page."""
    from keysteward.web.routes import render

    shown_reviewer = viewer.email if reviewer is None else reviewer or None
    with store.session() as session:
        campaign = find_campaign(session, campaign_id)
        items = list_items(session, campaign_id=campaign.id, reviewer=shown_reviewer)
        rows = [
            {
                "id": item.id,
                "subject_type": item.subject_type,
                "subject_label": item.subject_label,
                "reviewee": item.reviewee,
                "reviewer": item.reviewer,
                "recommendation": item.recommendation,
                "reason": item.recommendation_reason,
                "decision": item.decision,
                "decided_by": item.decided_by,
            }
            for item in items
        ]
        name, status = campaign.name, campaign.status
    return render(
        request,
        "review_campaign.html",
        viewer,
        campaign_id=campaign_id,
        campaign_name=name,
        campaign_status=status,
        items=rows,
        reviewer=shown_reviewer or "",
        undecided=sum(1 for row in rows if row["decision"] is None),
        decisions=[d.value for d in Decision],
        done=done,
    )


@router.post("/reviews/{campaign_id}/accept")
def bulk_accept(
    request: Request,
    campaign_id: int,
    store: StoreDep,
    viewer: Annotated[Viewer, Depends(page_permission(Perm.REVIEWS_WRITE))],
    csrf_token: Annotated[str, Form(max_length=100)],
    reviewer: Annotated[str, Form(max_length=320)] = "",
) -> Response:
    """Decide every undecided item of the reviewer as recommended."""
    check_csrf(request, csrf_token)
    scope = reviewer or None
    applied = run_transaction(
        store,
        lambda session: accept_recommended(
            session,
            actor=viewer.principal.label,
            campaign_id=campaign_id,
            reviewer=scope,
        ),
    )
    query = urlencode({"reviewer": reviewer, "done": sum(applied.values())})
    return RedirectResponse(f"/reviews/{campaign_id}?{query}", status_code=303)


@router.post("/reviews/{campaign_id}/items/{item_id}")
def decide(
    request: Request,
    campaign_id: int,
    item_id: int,
    store: StoreDep,
    viewer: Annotated[Viewer, Depends(page_permission(Perm.REVIEWS_WRITE))],
    csrf_token: Annotated[str, Form(max_length=100)],
    decision: Annotated[Decision, Form()],
    reviewer: Annotated[str, Form(max_length=320)] = "",
    comment: Annotated[str | None, Form(max_length=1000)] = None,
) -> Response:
    """Record one decision on one item."""
    check_csrf(request, csrf_token)

    def work(session: Session) -> None:
        item = find_item(session, item_id)
        decide_item(
            session,
            item,
            decision,
            actor=viewer.principal.label,
            comment=comment,
            decided_by=viewer.email,
        )

    run_transaction(store, work)
    query = urlencode({"reviewer": reviewer, "done": 1})
    return RedirectResponse(f"/reviews/{campaign_id}?{query}", status_code=303)
