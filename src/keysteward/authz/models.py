from datetime import datetime

from sqlalchemy import Column, ForeignKey, String, Table, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column, relationship

from keysteward.clock import utcnow
from keysteward.db import Base

role_permissions = Table(
    "role_permissions",
    Base.metadata,
    Column("role_id", ForeignKey("roles.id", ondelete="CASCADE"), primary_key=True),
    Column(
        "permission_id",
        ForeignKey("permissions.id", ondelete="CASCADE"),
        primary_key=True,
    ),
)


class Permission(Base):
    """An action on a resource of a system, written ``system:resource:action``."""

    __tablename__ = "permissions"
    __table_args__ = (UniqueConstraint("system", "resource", "action"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    system: Mapped[str] = mapped_column(String(100))
    resource: Mapped[str] = mapped_column(String(500))
    action: Mapped[str] = mapped_column(String(20))

    def __str__(self) -> str:
        return f"{self.system}:{self.resource}:{self.action}"


class Role(Base):
    """A named set of permissions, such as "marketing automation"."""

    __tablename__ = "roles"

    id: Mapped[int] = mapped_column(primary_key=True)
    name: Mapped[str] = mapped_column(String(200), unique=True)
    description: Mapped[str | None] = mapped_column(String(1000))
    created_at: Mapped[datetime] = mapped_column(default=utcnow)

    permissions: Mapped[list[Permission]] = relationship(secondary=role_permissions)


class RoleGrant(Base):
    """A role given to a principal, optionally until an expiry time."""

    __tablename__ = "role_grants"
    __table_args__ = (UniqueConstraint("role_id", "principal_type", "principal_id"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    role_id: Mapped[int] = mapped_column(ForeignKey("roles.id", ondelete="CASCADE"))
    # "person" or "service_account"; principal_id is the id in that table.
    principal_type: Mapped[str] = mapped_column(String(30))
    principal_id: Mapped[int]
    expires_at: Mapped[datetime | None]
    created_at: Mapped[datetime] = mapped_column(default=utcnow)

    role: Mapped[Role] = relationship()
