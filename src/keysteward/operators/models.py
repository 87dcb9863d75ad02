"""Login credentials and dashboard sessions of the people who operate keysteward."""

from datetime import datetime

from sqlalchemy import ForeignKey, LargeBinary, String
from sqlalchemy.orm import Mapped, mapped_column

from keysteward.clock import utcnow
from keysteward.db import Base


class OperatorLogin(Base):
    """A person's dashboard login: Argon2id hash, optional TOTP and operator role.

    The TOTP secret is stored encrypted under a subkey of the master key, so
    a copy of the database alone cannot produce codes.
    """

    __tablename__ = "operator_logins"

    person_id: Mapped[int] = mapped_column(
        ForeignKey("people.id", ondelete="CASCADE"), primary_key=True
    )
    password_hash: Mapped[str | None] = mapped_column(String(200))
    totp_secret: Mapped[bytes | None] = mapped_column(LargeBinary)
    role: Mapped[str | None] = mapped_column(String(20))
    password_changed_at: Mapped[datetime | None]
    updated_at: Mapped[datetime] = mapped_column(default=utcnow, onupdate=utcnow)


class WebSession(Base):
    """A server-side dashboard session; only the SHA-256 of its token is kept."""

    __tablename__ = "web_sessions"

    id: Mapped[int] = mapped_column(primary_key=True)
    digest: Mapped[str] = mapped_column(String(64), unique=True)
    person_id: Mapped[int] = mapped_column(ForeignKey("people.id", ondelete="CASCADE"))
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    last_seen_at: Mapped[datetime] = mapped_column(default=utcnow)
    expires_at: Mapped[datetime]
    source_address: Mapped[str | None] = mapped_column(String(100))
