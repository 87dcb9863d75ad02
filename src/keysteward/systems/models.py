from datetime import datetime
from enum import StrEnum
from typing import Any

from sqlalchemy import ForeignKey, String
from sqlalchemy.orm import Mapped, mapped_column, relationship

from keysteward.clock import utcnow
from keysteward.db import Base
from keysteward.identities.models import Person


class SystemCategory(StrEnum):
    AI_MODEL_API = "ai_model_api"
    ANALYTICS = "analytics"
    CHAT = "chat"
    CLOUD = "cloud"
    CODE_HOSTING = "code_hosting"
    CRM = "crm"
    DATABASE = "database"
    EMAIL = "email"
    IDENTITY = "identity"
    PAYMENTS = "payments"
    PRODUCTIVITY = "productivity"
    WORKFLOW = "workflow"
    OTHER = "other"


class SystemStatus(StrEnum):
    ACTIVE = "active"
    DECOMMISSIONED = "decommissioned"


class System(Base):
    """A platform that credentials give access to."""

    __tablename__ = "systems"

    id: Mapped[int] = mapped_column(primary_key=True)
    name: Mapped[str] = mapped_column(String(100), unique=True)
    category: Mapped[str] = mapped_column(String(30), default=SystemCategory.OTHER)
    status: Mapped[str] = mapped_column(String(20), default=SystemStatus.ACTIVE)
    owner_id: Mapped[int | None] = mapped_column(ForeignKey("people.id"))
    # Maximum credential age in days before rotation is due; None uses the default.
    rotation_max_age_days: Mapped[int | None]
    attributes: Mapped[dict[str, Any]] = mapped_column(default=dict)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(default=utcnow, onupdate=utcnow)

    owner: Mapped[Person | None] = relationship()
