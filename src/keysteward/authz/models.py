from datetime import date, datetime
from typing import Any

from sqlalchemy import (
    CheckConstraint,
    Column,
    ForeignKey,
    Index,
    String,
    Table,
    UniqueConstraint,
)
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


class RoleInclude(Base):
    """One role including another: holders of ``role`` get ``included_role`` too."""

    __tablename__ = "authz_role_includes"

    role_id: Mapped[int] = mapped_column(
        ForeignKey("roles.id", ondelete="CASCADE"), primary_key=True
    )
    included_role_id: Mapped[int] = mapped_column(
        ForeignKey("roles.id", ondelete="CASCADE"), primary_key=True
    )


class Group(Base):
    """A named set of people and service accounts that roles can be given to."""

    __tablename__ = "authz_groups"

    id: Mapped[int] = mapped_column(primary_key=True)
    name: Mapped[str] = mapped_column(String(200), unique=True)
    description: Mapped[str | None] = mapped_column(String(1000))
    created_at: Mapped[datetime] = mapped_column(default=utcnow)


class GroupMember(Base):
    """A person or service account in a group; ids as in ``RoleGrant``."""

    __tablename__ = "authz_group_members"

    group_id: Mapped[int] = mapped_column(
        ForeignKey("authz_groups.id", ondelete="CASCADE"), primary_key=True
    )
    principal_type: Mapped[str] = mapped_column(String(30), primary_key=True)
    principal_id: Mapped[int] = mapped_column(primary_key=True)


class DenyRule(Base):
    """A permission explicitly denied, overriding every grant.

    Attached to a role (``role_id``), to one principal (``principal_type`` and
    ``principal_id``) or, with neither set, to everyone.
    """

    __tablename__ = "authz_deny_rules"
    __table_args__ = (
        CheckConstraint("role_id IS NULL OR principal_type IS NULL", name="one_target"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    role_id: Mapped[int | None] = mapped_column(
        ForeignKey("roles.id", ondelete="CASCADE")
    )
    principal_type: Mapped[str | None] = mapped_column(String(30))
    principal_id: Mapped[int | None]
    permission: Mapped[str] = mapped_column(String(700))
    # Context attribute name -> approved values; see DenySpec.unless.
    unless: Mapped[dict[str, Any]] = mapped_column(default=dict)
    description: Mapped[str | None] = mapped_column(String(1000))
    created_at: Mapped[datetime] = mapped_column(default=utcnow)


class PolicyState(Base):
    """The one row that versions the stored policy.

    ``version`` grows by one on every apply, so a process with a compiled
    index can tell that it is stale. ``digest`` is the SHA-256 of the
    policy's canonical form, which exported files record as their base.
    """

    __tablename__ = "authz_policy_state"

    id: Mapped[int] = mapped_column(primary_key=True)
    version: Mapped[int] = mapped_column(default=0)
    digest: Mapped[str] = mapped_column(String(64))
    updated_at: Mapped[datetime] = mapped_column(default=utcnow)


class PermissionUsage(Base):
    """Decisions for one principal and permission on one UTC day."""

    __tablename__ = "authz_usage"
    __table_args__ = (
        UniqueConstraint("principal", "permission", "day"),
        Index("ix_authz_usage_day", "day"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    principal: Mapped[str] = mapped_column(String(360))
    permission: Mapped[str] = mapped_column(String(700))
    day: Mapped[date]
    allowed_count: Mapped[int] = mapped_column(default=0)
    denied_count: Mapped[int] = mapped_column(default=0)
    last_seen_at: Mapped[datetime]
