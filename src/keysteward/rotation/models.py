"""Rotation records and the leases that keep one rotation per secret."""

from datetime import datetime
from enum import StrEnum
from typing import Any

from sqlalchemy import ForeignKey, Index, String, text
from sqlalchemy.orm import Mapped, mapped_column

from keysteward.clock import utcnow
from keysteward.db import Base


class RotationState(StrEnum):
    """The steps of a rotation, in order, then the end states."""

    REQUESTED = "requested"
    # Manual rotations only: a task waits for a person to put a new value.
    AWAITING_VALUE = "awaiting_value"
    PENDING_CREATED = "pending_created"
    APPLIED = "applied"
    VERIFIED = "verified"
    PROMOTED = "promoted"
    GRACE = "grace"
    OLD_REVOKED = "old_revoked"
    # Undoing a rotation that failed before promotion; resumable like the rest.
    ROLLING_BACK = "rolling_back"
    DONE = "done"
    FAILED = "failed"
    ROLLED_BACK = "rolled_back"


MAX_REASON_CHARS = 500
END_STATES = (RotationState.DONE, RotationState.FAILED, RotationState.ROLLED_BACK)
ACTIVE_STATES = tuple(state for state in RotationState if state not in END_STATES)
_ACTIVE_SQL = "state NOT IN ('done', 'failed', 'rolled_back')"


class Rotation(Base):
    """One rotation of one vault secret, persisted after every step.

    ``old_version`` is the vault version that was current when the rotation
    was requested and ``new_version`` the pending version the rotator
    generated, so the value that works on the target is always one of them.
    """

    __tablename__ = "rotations"
    __table_args__ = (
        # At most one unfinished rotation per secret, across all processes.
        Index(
            "uq_rotations_active_secret",
            "secret_id",
            unique=True,
            postgresql_where=text(_ACTIVE_SQL),
            sqlite_where=text(_ACTIVE_SQL),
        ),
        Index("ix_rotations_state", "state"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    secret_id: Mapped[int] = mapped_column(
        ForeignKey("vault_secrets.id", ondelete="CASCADE")
    )
    credential_id: Mapped[int | None] = mapped_column(
        ForeignKey("credentials.id", ondelete="SET NULL")
    )
    rotator: Mapped[str] = mapped_column(String(50))
    state: Mapped[str] = mapped_column(String(20), default=RotationState.REQUESTED)
    # Why it was requested: "due", "operator", or free text from the caller,
    # such as an offboarding note.
    reason: Mapped[str] = mapped_column(String(MAX_REASON_CHARS))
    requested_by: Mapped[str] = mapped_column(String(200))
    requested_at: Mapped[datetime] = mapped_column(default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(default=utcnow, onupdate=utcnow)
    old_version: Mapped[int | None]
    new_version: Mapped[int | None]
    grace_until: Mapped[datetime | None]
    # Manual rotations: when the new value is due, and the last reminder sent.
    due_at: Mapped[datetime | None]
    reminded_at: Mapped[datetime | None]
    attempts: Mapped[int] = mapped_column(default=0)
    last_error: Mapped[str | None] = mapped_column(String(1000))
    finished_at: Mapped[datetime | None]
    # Non-secret facts needed to undo the rotation, such as the credential's
    # fingerprint and last rotation time before the pending value was stored.
    details: Mapped[dict[str, Any]] = mapped_column(default=dict)


class RotationLease(Base):
    """A named lock held by one process until it releases it or it expires.

    Works the same on SQLite and PostgreSQL. A lease whose holder process is
    gone from this host, or whose expiry has passed, can be taken over.
    """

    __tablename__ = "rotation_leases"

    name: Mapped[str] = mapped_column(String(200), primary_key=True)
    owner: Mapped[str] = mapped_column(String(200))
    acquired_at: Mapped[datetime] = mapped_column(default=utcnow)
    expires_at: Mapped[datetime]
