from datetime import date, datetime
from enum import StrEnum
from typing import Any

from sqlalchemy import ForeignKey, Index, String, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column, relationship

from keysteward.clock import utcnow
from keysteward.db import Base


class CampaignStatus(StrEnum):
    OPEN = "open"
    CLOSED = "closed"


class SubjectType(StrEnum):
    CREDENTIAL = "credential"
    SERVICE_ACCOUNT = "service_account"
    ROLE_ASSIGNMENT = "role_assignment"


class Decision(StrEnum):
    KEEP = "keep"
    REVOKE = "revoke"
    REDUCE = "reduce"
    ROTATE = "rotate"


class ReviewCampaign(Base):
    """One access review: the scope snapshot taken at ``started_at``."""

    __tablename__ = "review_campaigns"

    id: Mapped[int] = mapped_column(primary_key=True)
    name: Mapped[str] = mapped_column(String(200), unique=True)
    status: Mapped[str] = mapped_column(String(20), default=CampaignStatus.OPEN)
    started_at: Mapped[datetime] = mapped_column(default=utcnow)
    started_by: Mapped[str] = mapped_column(String(200))
    due_on: Mapped[date]
    fallback_reviewer: Mapped[str | None] = mapped_column(String(320))
    closed_at: Mapped[datetime | None]
    # Decision given to items still open when the campaign closes.
    close_decision: Mapped[str | None] = mapped_column(String(20))

    items: Mapped[list["ReviewItem"]] = relationship(
        back_populates="campaign", order_by="ReviewItem.id"
    )


class ReviewItem(Base):
    """One piece of access in a campaign, its reviewer and the outcome.

    ``facts`` is the snapshot shown to the reviewer: last use, last
    rotation, privilege against usage and open findings. ``proof`` records
    how the decision was applied, as an event id and the state afterwards.
    """

    __tablename__ = "review_items"
    __table_args__ = (
        UniqueConstraint("campaign_id", "subject_type", "subject_id"),
        Index("ix_review_items_reviewer", "reviewer"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    campaign_id: Mapped[int] = mapped_column(
        ForeignKey("review_campaigns.id", ondelete="CASCADE")
    )
    subject_type: Mapped[str] = mapped_column(String(30))
    subject_id: Mapped[int]
    subject_label: Mapped[str] = mapped_column(String(500))
    # Email of the person the access belongs to, when it is a person's.
    reviewee: Mapped[str | None] = mapped_column(String(320))
    reviewer: Mapped[str] = mapped_column(String(320))
    facts: Mapped[dict[str, Any]] = mapped_column(default=dict)
    recommendation: Mapped[str] = mapped_column(String(20))
    recommendation_reason: Mapped[str] = mapped_column(String(1000))
    # For a "reduce" recommendation: the permissions the access was seen to use.
    recommended_permissions: Mapped[list[str]] = mapped_column(default=list)
    decision: Mapped[str | None] = mapped_column(String(20))
    comment: Mapped[str | None] = mapped_column(String(1000))
    decided_by: Mapped[str | None] = mapped_column(String(320))
    decided_at: Mapped[datetime | None]
    # Set when the campaign closed over an undecided item, so the export can mark it.
    flagged: Mapped[bool] = mapped_column(default=False)
    applied_at: Mapped[datetime | None]
    proof: Mapped[dict[str, Any]] = mapped_column(default=dict)

    campaign: Mapped[ReviewCampaign] = relationship(back_populates="items")
