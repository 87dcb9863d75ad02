from datetime import datetime

from sqlalchemy import String
from sqlalchemy.orm import Mapped, mapped_column

from keysteward.clock import utcnow
from keysteward.db import Base


class ApiToken(Base):
    """An issued API token. Only the SHA-256 digest of the token is stored."""

    __tablename__ = "api_tokens"

    id: Mapped[int] = mapped_column(primary_key=True)
    digest: Mapped[str] = mapped_column(String(64), unique=True)
    # The first characters after the prefix, so an operator can tell tokens apart.
    hint: Mapped[str] = mapped_column(String(20))
    # "service_account" or "person"; principal_id is the id in that table.
    principal_type: Mapped[str] = mapped_column(String(30))
    principal_id: Mapped[int]
    # Names of roles the token is limited to; empty means all the principal's roles.
    roles: Mapped[list[str]] = mapped_column(default=list)
    description: Mapped[str | None] = mapped_column(String(500))
    created_by: Mapped[str] = mapped_column(String(200))
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    expires_at: Mapped[datetime | None]
    last_used_at: Mapped[datetime | None]
    revoked_at: Mapped[datetime | None]


class AuthFailure(Base):
    """Failed authentication attempts from one source address.

    Kept in the store, not in memory, so every server process reads the
    same count and the slowdown applies across processes.
    """

    __tablename__ = "auth_failures"

    source: Mapped[str] = mapped_column(String(100), primary_key=True)
    failures: Mapped[int] = mapped_column(default=0)
    first_failed_at: Mapped[datetime] = mapped_column(default=utcnow)
    last_failed_at: Mapped[datetime] = mapped_column(default=utcnow)
    blocked_until: Mapped[datetime | None]
