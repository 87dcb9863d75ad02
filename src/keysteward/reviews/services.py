"""Running an access review campaign: start, decide, remind and close.

Every function works inside the caller's transaction and records an event
for each change. A decision is applied as soon as it is made, so the state
the export shows is the state of the store.
"""

from collections import Counter, defaultdict
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from keysteward.clock import utcnow
from keysteward.errors import InvalidInputError, NotFoundError
from keysteward.events.services import record_event
from keysteward.identities.models import Person, PersonStatus
from keysteward.reviews.apply import apply_decision, check_decision
from keysteward.reviews.models import (
    CampaignStatus,
    Decision,
    ReviewCampaign,
    ReviewItem,
)
from keysteward.reviews.scope import snapshot_scope

DEFAULT_DUE_DAYS = 14
# Open items get this decision when a campaign closes, unless the caller
# passes another.
# Keeping (and flagging) is the default because revoking access nobody
# looked at can stop production automations without warning.
DEFAULT_CLOSE_DECISION = Decision.KEEP
CLOSE_DECISIONS = (Decision.KEEP, Decision.REVOKE)
ACCEPTED_COMMENT = "accepted the recommendation"


def quarter_name(moment: datetime) -> str:
    """Return the quarterly campaign name for ``moment``, such as 2026-Q4."""
    return f"{moment.year}-Q{(moment.month - 1) // 3 + 1}"


def _active_person(session: Session, email: str, option: str) -> Person:
    person = session.scalar(
        select(Person).where(func.lower(Person.email) == email.strip().lower())
    )
    if person is None:
        raise NotFoundError(
            f"{option} {email!r} is not a known person; `keysteward people list` "
            "shows the people in the store"
        )
    if person.status == PersonStatus.DEPARTED:
        raise InvalidInputError(
            f"{option} {email!r} has left the company; name a current person"
        )
    return person


def start_campaign(
    session: Session,
    *,
    actor: str,
    name: str | None = None,
    due_on: date | None = None,
    fallback_reviewer: str | None = None,
    now: datetime | None = None,
) -> ReviewCampaign:
    """Snapshot the scope into a new campaign and assign every item a reviewer.

    Raises InvalidInputError when the name is taken, the due date has passed,
    or some item has no eligible reviewer and no fallback reviewer was given.
    """
    now = now or utcnow()
    name = name or quarter_name(now)
    if session.scalar(select(ReviewCampaign.id).where(ReviewCampaign.name == name)):
        raise InvalidInputError(
            f"a campaign named {name!r} already exists; pass --name with another name"
        )
    due_on = due_on or (now + timedelta(days=DEFAULT_DUE_DAYS)).date()
    if due_on < now.date():
        raise InvalidInputError(
            f"due date {due_on.isoformat()} has passed; give a later --due"
        )
    fallback = None
    if fallback_reviewer is not None:
        fallback = _active_person(session, fallback_reviewer, "--fallback-reviewer")

    scope = snapshot_scope(session, now)
    unassigned = [item for item in scope if item.reviewer is None]
    if unassigned and fallback is None:
        examples = ", ".join(item.subject_label for item in unassigned[:3])
        raise InvalidInputError(
            f"{len(unassigned)} item(s) have no eligible reviewer because the owner "
            f"left, is missing or is the reviewee (e.g. {examples}); "
            "pass --fallback-reviewer EMAIL"
        )
    campaign = ReviewCampaign(
        name=name,
        started_at=now,
        started_by=actor,
        due_on=due_on,
        fallback_reviewer=fallback.email if fallback else None,
    )
    session.add(campaign)
    session.flush()
    session.add_all(
        ReviewItem(
            campaign_id=campaign.id,
            subject_type=item.subject_type.value,
            subject_id=item.subject_id,
            subject_label=item.subject_label[:500],
            reviewee=item.reviewee,
            reviewer=item.reviewer or (fallback.email if fallback else ""),
            facts=item.facts,
            recommendation=item.recommendation.value,
            recommendation_reason=item.reason[:1000],
            recommended_permissions=item.recommended_permissions,
        )
        for item in scope
    )
    record_event(
        session,
        actor=actor,
        action="review.start",
        target_type="review_campaign",
        target_id=campaign.id,
        details={
            "name": name,
            "due_on": due_on.isoformat(),
            "items": dict(Counter(item.subject_type.value for item in scope)),
            "fallback_assigned": len(unassigned),
        },
    )
    session.flush()
    return campaign


def find_campaign(session: Session, campaign_id: int | None = None) -> ReviewCampaign:
    """Return campaign ``campaign_id``, or the newest open one when it is None."""
    if campaign_id is not None:
        campaign = session.get(ReviewCampaign, campaign_id)
        if campaign is None:
            raise NotFoundError(
                f"review campaign {campaign_id} not found; `keysteward review list` "
                "shows the campaigns"
            )
        return campaign
    campaign = session.scalar(
        select(ReviewCampaign)
        .where(ReviewCampaign.status == CampaignStatus.OPEN)
        .order_by(ReviewCampaign.id.desc())
        .limit(1)
    )
    if campaign is None:
        raise NotFoundError(
            "no open review campaign; start one with `keysteward review start`"
        )
    return campaign


def list_campaigns(session: Session) -> list[dict[str, Any]]:
    """Return every campaign with its item and decision counts, newest first."""
    counts: dict[int, Counter[str]] = defaultdict(Counter)
    query = select(ReviewItem.campaign_id, ReviewItem.decision, func.count()).group_by(
        ReviewItem.campaign_id, ReviewItem.decision
    )
    for campaign_id, decision, count in session.execute(query):
        counts[campaign_id][decision or "open"] += count
    campaigns = session.scalars(
        select(ReviewCampaign).order_by(ReviewCampaign.id.desc())
    )
    return [
        {
            "id": campaign.id,
            "name": campaign.name,
            "status": campaign.status,
            "started_at": campaign.started_at,
            "due_on": campaign.due_on,
            "items": sum(counts[campaign.id].values()),
            "open": counts[campaign.id]["open"],
            "decisions": {
                key: value
                for key, value in counts[campaign.id].items()
                if key != "open"
            },
        }
        for campaign in campaigns
    ]


def find_item(session: Session, item_id: int) -> ReviewItem:
    """Return review item ``item_id``, or raise NotFoundError."""
    item = session.get(ReviewItem, item_id)
    if item is None:
        raise NotFoundError(
            f"review item {item_id} not found; `keysteward review items` lists them"
        )
    return item


def list_items(
    session: Session,
    *,
    campaign_id: int | None = None,
    reviewer: str | None = None,
    undecided_only: bool = False,
) -> list[ReviewItem]:
    """Return the campaign's items, optionally one reviewer's, in id order."""
    campaign = find_campaign(session, campaign_id)
    query = select(ReviewItem).where(ReviewItem.campaign_id == campaign.id)
    if reviewer is not None:
        query = query.where(func.lower(ReviewItem.reviewer) == reviewer.lower())
    if undecided_only:
        query = query.where(ReviewItem.decision.is_(None))
    return list(session.scalars(query.order_by(ReviewItem.id)))


def parse_decision(text: str) -> Decision:
    """Return the decision named ``text``, or raise InvalidInputError."""
    try:
        return Decision(text.strip().lower())
    except ValueError:
        choices = ", ".join(d.value for d in Decision)
        raise InvalidInputError(
            f"invalid decision {text!r}; choose one of {choices}"
        ) from None


def decide_item(
    session: Session,
    item: ReviewItem,
    decision: Decision,
    *,
    actor: str,
    comment: str | None = None,
    decided_by: str | None = None,
    now: datetime | None = None,
) -> ReviewItem:
    """Record and apply a decision on an undecided item of an open campaign."""
    if item.campaign.status != CampaignStatus.OPEN:
        raise InvalidInputError(
            f"item {item.id} belongs to closed campaign {item.campaign.name!r}; "
            "decisions can no longer change"
        )
    if item.decision is not None:
        raise InvalidInputError(
            f"item {item.id} was already decided ({item.decision}) and applied; "
            "start a new campaign to review it again"
        )
    check_decision(item, decision)
    item.decision = decision.value
    item.comment = comment[:1000] if comment else None
    item.decided_by = decided_by or item.reviewer
    item.decided_at = now or utcnow()
    record_event(
        session,
        actor=actor,
        action="review.decide",
        target_type="review_item",
        target_id=item.id,
        details={
            "decision": decision.value,
            "decided_by": item.decided_by,
            "recommendation": item.recommendation,
        },
    )
    apply_decision(session, item, actor)
    return item


def accept_recommended(
    session: Session,
    *,
    actor: str,
    campaign_id: int | None = None,
    reviewer: str | None = None,
) -> Counter[str]:
    """Decide every undecided item (of one reviewer) as recommended.

    Returns the number of items per decision.
    """
    items = list_items(
        session, campaign_id=campaign_id, reviewer=reviewer, undecided_only=True
    )
    applied: Counter[str] = Counter()
    for item in items:
        decide_item(
            session,
            item,
            Decision(item.recommendation),
            actor=actor,
            comment=ACCEPTED_COMMENT,
            decided_by=reviewer or item.reviewer,
        )
        applied[item.recommendation] += 1
    return applied


def reassign_item(
    session: Session, item: ReviewItem, email: str, *, actor: str
) -> ReviewItem:
    """Give an undecided item to another current person."""
    if item.decision is not None:
        raise InvalidInputError(
            f"item {item.id} is already decided; only open items can be reassigned"
        )
    person = _active_person(session, email, "reviewer")
    if item.reviewee is not None and person.email == item.reviewee:
        raise InvalidInputError(
            f"{person.email} is the reviewee of item {item.id} and cannot review "
            "their own access; choose someone else"
        )
    previous, item.reviewer = item.reviewer, person.email
    record_event(
        session,
        actor=actor,
        action="review.reassign",
        target_type="review_item",
        target_id=item.id,
        details={"from": previous, "to": person.email},
    )
    return item


@dataclass
class Reminder:
    campaign: str
    reviewer: str
    open_items: int
    due_on: date


def send_reminders(
    session: Session, *, within_days: int, actor: str, today: date | None = None
) -> list[Reminder]:
    """Record a reminder event per reviewer with open items due within N days."""
    if within_days < 0:
        raise InvalidInputError(
            f"invalid --within {within_days}; give zero or more days"
        )
    today = today or utcnow().date()
    limit = today + timedelta(days=within_days)
    query = (
        select(ReviewItem.campaign_id, ReviewItem.reviewer, func.count())
        .join(ReviewCampaign, ReviewItem.campaign_id == ReviewCampaign.id)
        .where(
            ReviewCampaign.status == CampaignStatus.OPEN,
            ReviewCampaign.due_on <= limit,
            ReviewItem.decision.is_(None),
        )
        .group_by(ReviewItem.campaign_id, ReviewItem.reviewer)
        .order_by(ReviewItem.campaign_id, ReviewItem.reviewer)
    )
    reminders = []
    for campaign_id, reviewer, count in session.execute(query).all():
        campaign = find_campaign(session, campaign_id)
        reminder = Reminder(campaign.name, reviewer, int(count), campaign.due_on)
        record_event(
            session,
            actor=actor,
            action="review.remind",
            target_type="review_campaign",
            target_id=campaign.id,
            details={
                "reviewer": reviewer,
                "open_items": reminder.open_items,
                "due_on": campaign.due_on.isoformat(),
            },
        )
        reminders.append(reminder)
    return reminders


def close_campaign(
    session: Session,
    campaign: ReviewCampaign,
    *,
    actor: str,
    default: Decision = DEFAULT_CLOSE_DECISION,
) -> Counter[str]:
    """Close the campaign, deciding every open item as ``default`` and flagging it.

    Returns the number of items closed per decision.
    """
    if campaign.status != CampaignStatus.OPEN:
        raise InvalidInputError(f"campaign {campaign.name!r} is already closed")
    if default not in CLOSE_DECISIONS:
        raise InvalidInputError(
            f"invalid close decision {default.value!r}; choose keep or revoke"
        )
    closed: Counter[str] = Counter()
    for item in list_items(session, campaign_id=campaign.id, undecided_only=True):
        decide_item(
            session,
            item,
            default,
            actor=actor,
            comment="no decision by the due date; closed with the default",
            decided_by=f"close:{actor}",
        )
        item.flagged = True
        closed[default.value] += 1
    campaign.status = CampaignStatus.CLOSED
    campaign.closed_at = utcnow()
    campaign.close_decision = default.value
    record_event(
        session,
        actor=actor,
        action="review.close",
        target_type="review_campaign",
        target_id=campaign.id,
        details={"default": default.value, "closed_open_items": sum(closed.values())},
    )
    return closed
