"""Rate-limit buckets kept in the store when no Redis is configured."""

from datetime import datetime

from sqlalchemy import Float, String
from sqlalchemy.orm import Mapped, mapped_column

from keysteward.db import Base


class RateBucket(Base):
    """The token bucket of one principal and system, shared by every process."""

    __tablename__ = "gateway_rate_buckets"

    # "principal|system", for example "service_account:crm-sync|hubspot".
    key: Mapped[str] = mapped_column(String(400), primary_key=True)
    tokens: Mapped[float] = mapped_column(Float)
    updated_at: Mapped[datetime]
