"""Per-installation values kept in the store, such as the fingerprint salt."""

from sqlalchemy import String
from sqlalchemy.orm import Mapped, mapped_column

from keysteward.db import Base


class StoreMeta(Base):
    __tablename__ = "store_meta"

    key: Mapped[str] = mapped_column(String(100), primary_key=True)
    value: Mapped[str] = mapped_column(String(1000))
