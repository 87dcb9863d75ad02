from datetime import datetime
from enum import StrEnum
from typing import Any

from sqlalchemy import CheckConstraint, ForeignKey, Index, String, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column, relationship

from keysteward.clock import utcnow
from keysteward.db import Base
from keysteward.identities.models import Person, ServiceAccount
from keysteward.systems.models import System


class CredentialKind(StrEnum):
    ACCESS_KEY = "access_key"
    API_KEY = "api_key"
    APP_INSTALLATION = "app_installation"
    CERTIFICATE = "certificate"
    CONNECTION_STRING = "connection_string"
    OAUTH_TOKEN = "oauth_token"  # noqa: S105
    PASSWORD = "password"  # noqa: S105
    PERSONAL_ACCESS_TOKEN = "personal_access_token"  # noqa: S105
    SERVICE_ACCOUNT_KEY = "service_account_key"
    SSH_KEY = "ssh_key"
    WEBHOOK_URL = "webhook_url"
    OTHER = "other"


class Privilege(StrEnum):
    """How much a credential can do, ordered from least to most."""

    UNKNOWN = "unknown"
    READ = "read"
    WRITE = "write"
    ADMIN = "admin"


class CredentialStatus(StrEnum):
    ACTIVE = "active"
    INACTIVE = "inactive"
    EXPIRED = "expired"
    REVOKED = "revoked"
    # No longer present in a fresh export of its source.
    RETIRED = "retired"


class Credential(Base):
    """One credential as recorded in the inventory.

    The secret value itself never lives here: at most a salted fingerprint
    (for spotting the same value in two places) and the short hint that the
    source itself shows, such as the last four characters.
    """

    __tablename__ = "credentials"
    __table_args__ = (
        UniqueConstraint("source", "source_id"),
        # A credential is issued to a person or to a service account, never both.
        CheckConstraint(
            "holder_person_id IS NULL OR holder_service_account_id IS NULL",
            name="one_holder",
        ),
        Index("ix_credentials_fingerprint", "fingerprint"),
        Index("ix_credentials_status", "status"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    name: Mapped[str] = mapped_column(String(300))
    kind: Mapped[str] = mapped_column(String(40), default=CredentialKind.API_KEY)
    system_id: Mapped[int | None] = mapped_column(ForeignKey("systems.id"))
    scopes: Mapped[list[str]] = mapped_column(default=list)
    privilege: Mapped[str] = mapped_column(String(20), default=Privilege.UNKNOWN)
    created_by_id: Mapped[int | None] = mapped_column(ForeignKey("people.id"))
    owner_id: Mapped[int | None] = mapped_column(ForeignKey("people.id"))
    holder_person_id: Mapped[int | None] = mapped_column(ForeignKey("people.id"))
    holder_service_account_id: Mapped[int | None] = mapped_column(
        ForeignKey("service_accounts.id")
    )
    created_at: Mapped[datetime | None]
    last_rotated_at: Mapped[datetime | None]
    last_used_at: Mapped[datetime | None]
    expires_at: Mapped[datetime | None]
    status: Mapped[str] = mapped_column(String(20), default=CredentialStatus.ACTIVE)
    source: Mapped[str] = mapped_column(String(50))
    source_id: Mapped[str] = mapped_column(String(500))
    fingerprint: Mapped[str | None] = mapped_column(String(64))
    secret_hint: Mapped[str | None] = mapped_column(String(40))
    attributes: Mapped[dict[str, Any]] = mapped_column(default=dict)
    first_seen_at: Mapped[datetime] = mapped_column(default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(default=utcnow, onupdate=utcnow)

    system: Mapped[System | None] = relationship()
    created_by: Mapped[Person | None] = relationship(foreign_keys=[created_by_id])
    owner: Mapped[Person | None] = relationship(foreign_keys=[owner_id])
    holder_person: Mapped[Person | None] = relationship(foreign_keys=[holder_person_id])
    holder_service_account: Mapped[ServiceAccount | None] = relationship()
