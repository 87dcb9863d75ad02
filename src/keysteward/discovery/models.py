"""Discovery hits: the places where each credential was found, by fingerprint."""

from datetime import datetime

from sqlalchemy import ForeignKey, Index, String, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from keysteward.clock import utcnow
from keysteward.db import Base


class DiscoveryHit(Base):
    """One place (file, line, cell or MIME part, commit) where a secret was found.

    ``fingerprint`` is the installation's salted fingerprint of the value, the
    same one ``Credential.fingerprint`` holds, so a hit links to its
    credential without the value being stored anywhere.
    """

    __tablename__ = "discovery_hits"
    __table_args__ = (
        # location_key is a SHA-256 of (path, line, pointer, commit), because
        # paths are too long for a portable composite unique index.
        UniqueConstraint("fingerprint", "location_key"),
        Index("ix_discovery_hits_credential_id", "credential_id"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    fingerprint: Mapped[str] = mapped_column(String(64))
    location_key: Mapped[str] = mapped_column(String(64))
    rule: Mapped[str] = mapped_column(String(100))
    path: Mapped[str] = mapped_column(String(2000))
    line: Mapped[int]
    pointer: Mapped[str | None] = mapped_column(String(500))
    commit: Mapped[str | None] = mapped_column(String(64))
    author: Mapped[str | None] = mapped_column(String(500))
    credential_id: Mapped[int | None] = mapped_column(ForeignKey("credentials.id"))
    first_seen_at: Mapped[datetime] = mapped_column(default=utcnow)
    last_seen_at: Mapped[datetime] = mapped_column(default=utcnow)
