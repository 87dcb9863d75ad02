from datetime import datetime
from typing import Any

from sqlalchemy import Index, String, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from keysteward.clock import utcnow
from keysteward.db import Base

DIGEST_LENGTH = 64


class Event(Base):
    """One recorded action. Rows are inserted, never updated or deleted.

    The service layer rejects changes (see ``events.services``) and database
    triggers created by the migrations reject them underneath it. Each row is
    a link of a hash chain: ``sequence`` numbers events 1, 2, 3, ... without
    gaps, and ``digest`` covers every field below except ``id``, including
    ``previous_digest`` (see ``events.chain``).
    """

    __tablename__ = "events"
    __table_args__ = (
        Index("ix_events_occurred_at", "occurred_at"),
        Index("ix_events_target", "target_type", "target_id"),
        UniqueConstraint("sequence", name="uq_events_sequence"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    occurred_at: Mapped[datetime] = mapped_column(default=utcnow)
    actor: Mapped[str] = mapped_column(String(200))
    action: Mapped[str] = mapped_column(String(100))
    target_type: Mapped[str | None] = mapped_column(String(50))
    target_id: Mapped[str | None] = mapped_column(String(200))
    outcome: Mapped[str] = mapped_column(String(20), default="success")
    source_address: Mapped[str | None] = mapped_column(String(100))
    request_id: Mapped[str | None] = mapped_column(String(100))
    details: Mapped[dict[str, Any]] = mapped_column(default=dict)
    # Set by the chain's before_flush listener, never by callers.
    sequence: Mapped[int] = mapped_column()
    previous_digest: Mapped[str] = mapped_column(String(DIGEST_LENGTH))
    digest: Mapped[str] = mapped_column(String(DIGEST_LENGTH))


class EventChainHead(Base):
    """The single row that records the newest link of the event chain.

    Appending writers lock this row, so they take sequence numbers one at a
    time and no two events claim the same predecessor.
    """

    __tablename__ = "event_chain_head"

    id: Mapped[int] = mapped_column(primary_key=True, autoincrement=False)
    last_sequence: Mapped[int] = mapped_column()
    last_digest: Mapped[str] = mapped_column(String(DIGEST_LENGTH))
    # HMAC-SHA256 of the two columns above (see events.seal), or None. It
    # is valid only while both keep the values it was computed for.
    seal: Mapped[str | None] = mapped_column(String(64))


class EventCheckpoint(Base):
    """A signed statement that the chain had ``digest`` at ``sequence``.

    ``public_key`` is the raw 32-byte Ed25519 key, hex encoded, and
    ``signature`` the 64-byte signature, hex encoded, over the bytes built by
    ``events.checkpoints.checkpoint_message``.
    """

    __tablename__ = "event_checkpoints"

    id: Mapped[int] = mapped_column(primary_key=True)
    sequence: Mapped[int] = mapped_column(index=True)
    digest: Mapped[str] = mapped_column(String(DIGEST_LENGTH))
    created_at: Mapped[datetime] = mapped_column()
    public_key: Mapped[str] = mapped_column(String(64))
    signature: Mapped[str] = mapped_column(String(128))
