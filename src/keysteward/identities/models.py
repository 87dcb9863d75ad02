from datetime import date, datetime
from enum import StrEnum
from typing import Any

from sqlalchemy import ForeignKey, String, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column, relationship

from keysteward.clock import utcnow
from keysteward.db import Base


class PersonStatus(StrEnum):
    ACTIVE = "active"
    DEPARTED = "departed"


class ServiceAccountStatus(StrEnum):
    ACTIVE = "active"
    DISABLED = "disabled"


class Person(Base):
    """A person at the company, as listed in the HR roster."""

    __tablename__ = "people"

    id: Mapped[int] = mapped_column(primary_key=True)
    name: Mapped[str] = mapped_column(String(200))
    email: Mapped[str] = mapped_column(String(320), unique=True)
    status: Mapped[str] = mapped_column(String(20), default=PersonStatus.ACTIVE)
    departed_on: Mapped[date | None]
    manager_id: Mapped[int | None] = mapped_column(ForeignKey("people.id"))
    attributes: Mapped[dict[str, Any]] = mapped_column(default=dict)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(default=utcnow, onupdate=utcnow)

    manager: Mapped["Person | None"] = relationship(remote_side=[id])
    accounts: Mapped[list["ExternalAccount"]] = relationship(
        back_populates="person", cascade="all, delete-orphan"
    )

    @property
    def is_departed(self) -> bool:
        return self.status == PersonStatus.DEPARTED


class ExternalAccount(Base):
    """A person's login on another system (GitHub login, Slack user id, ...).

    Exports name people by these ids, so importers resolve them to a person here.
    """

    __tablename__ = "external_accounts"
    __table_args__ = (UniqueConstraint("provider", "account_id"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    person_id: Mapped[int] = mapped_column(ForeignKey("people.id", ondelete="CASCADE"))
    provider: Mapped[str] = mapped_column(String(50))
    account_id: Mapped[str] = mapped_column(String(320))

    person: Mapped[Person] = relationship(back_populates="accounts")


class ServiceAccount(Base):
    """The identity an automation runs as, owned by a person."""

    __tablename__ = "service_accounts"

    id: Mapped[int] = mapped_column(primary_key=True)
    name: Mapped[str] = mapped_column(String(200), unique=True)
    purpose: Mapped[str | None] = mapped_column(String(1000))
    owner_id: Mapped[int | None] = mapped_column(ForeignKey("people.id"))
    status: Mapped[str] = mapped_column(String(20), default=ServiceAccountStatus.ACTIVE)
    attributes: Mapped[dict[str, Any]] = mapped_column(default=dict)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(default=utcnow, onupdate=utcnow)

    owner: Mapped[Person | None] = relationship()
