from datetime import datetime
from enum import StrEnum

from sqlalchemy import ForeignKey, Index, String
from sqlalchemy.orm import Mapped, mapped_column

from keysteward.clock import utcnow
from keysteward.db import Base


class RotationRequestStatus(StrEnum):
    QUEUED = "queued"
    DONE = "done"
    CANCELLED = "cancelled"


class RotationRequest(Base):
    """A request to rotate one credential, with the reason it was made.

    Offboarding and access reviews add these; the rotation workflow works
    them off. The credential's secret value never appears here.
    """

    __tablename__ = "rotation_requests"
    __table_args__ = (
        Index("ix_rotation_requests_credential_id", "credential_id"),
        Index("ix_rotation_requests_status", "status"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    credential_id: Mapped[int] = mapped_column(
        ForeignKey("credentials.id", ondelete="CASCADE")
    )
    reason: Mapped[str] = mapped_column(String(500))
    # What asked for it: "offboarding" or "access_review".
    origin: Mapped[str] = mapped_column(String(30))
    requested_by: Mapped[str] = mapped_column(String(200))
    status: Mapped[str] = mapped_column(
        String(20), default=RotationRequestStatus.QUEUED
    )
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
