from datetime import datetime
from enum import StrEnum

from sqlalchemy import (
    BigInteger,
    ForeignKey,
    Index,
    LargeBinary,
    String,
    UniqueConstraint,
)
from sqlalchemy.orm import Mapped, mapped_column, relationship

from keysteward.clock import utcnow
from keysteward.db import Base


class KekStatus(StrEnum):
    ACTIVE = "active"
    # Still unwraps data keys while a rekey moves them to the new KEK.
    RETIRING = "retiring"
    # Key material erased; nothing is wrapped by it any more.
    RETIRED = "retired"


class VersionStatus(StrEnum):
    CURRENT = "current"
    PREVIOUS = "previous"
    PENDING = "pending"
    RETIRED = "retired"


class KeyEncryptionKey(Base):
    """A key-encryption key (KEK), stored wrapped by the master key."""

    __tablename__ = "vault_keks"

    id: Mapped[int] = mapped_column(primary_key=True)
    # None once retired, so the key can no longer unwrap anything.
    wrapped_key: Mapped[bytes | None] = mapped_column(LargeBinary)
    status: Mapped[str] = mapped_column(String(20), default=KekStatus.ACTIVE)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    retired_at: Mapped[datetime | None]


class Secret(Base):
    """A named secret and what it belongs to; values live in its versions."""

    __tablename__ = "vault_secrets"

    id: Mapped[int] = mapped_column(primary_key=True)
    name: Mapped[str] = mapped_column(String(200), unique=True)
    description: Mapped[str | None] = mapped_column(String(1000))
    credential_id: Mapped[int | None] = mapped_column(
        ForeignKey("credentials.id", ondelete="SET NULL")
    )
    system_id: Mapped[int | None] = mapped_column(ForeignKey("systems.id"))
    owner_id: Mapped[int | None] = mapped_column(ForeignKey("people.id"))
    rotation_days: Mapped[int | None]
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(default=utcnow, onupdate=utcnow)

    versions: Mapped[list["SecretVersion"]] = relationship(
        back_populates="secret", order_by="SecretVersion.version"
    )


class SecretVersion(Base):
    """One value of a secret, encrypted under its own data key.

    ``ciphertext`` is the AES-256-GCM encryption of the value under the data
    key, and ``wrapped_key`` is the data key encrypted under KEK ``kek_id``.
    Both are bound to this row's secret id and version number by their
    associated data.
    """

    __tablename__ = "vault_secret_versions"
    __table_args__ = (
        UniqueConstraint("secret_id", "version"),
        Index("ix_vault_secret_versions_kek_id", "kek_id"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    secret_id: Mapped[int] = mapped_column(
        ForeignKey("vault_secrets.id", ondelete="CASCADE")
    )
    version: Mapped[int]
    status: Mapped[str] = mapped_column(String(20), default=VersionStatus.CURRENT)
    ciphertext: Mapped[bytes] = mapped_column(LargeBinary)
    wrapped_key: Mapped[bytes] = mapped_column(LargeBinary)
    kek_id: Mapped[int] = mapped_column(ForeignKey("vault_keks.id"))
    created_by: Mapped[str] = mapped_column(String(200))
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    retired_at: Mapped[datetime | None]

    secret: Mapped[Secret] = relationship(back_populates="versions")


class RekeyJob(Base):
    """A rewrap of every data key under a new KEK, resumable after a crash.

    Progress is the ``kek_id`` of each version row, committed batch by batch,
    so a resumed job only rewraps rows still under an older KEK.
    """

    __tablename__ = "vault_rekey_jobs"

    id: Mapped[int] = mapped_column(primary_key=True)
    target_kek_id: Mapped[int] = mapped_column(ForeignKey("vault_keks.id"))
    status: Mapped[str] = mapped_column(String(20), default="running")
    rewrapped: Mapped[int] = mapped_column(default=0)
    started_at: Mapped[datetime] = mapped_column(default=utcnow)
    finished_at: Mapped[datetime | None]


class ReadGeneration(Base):
    """A single-row counter of changes that can alter a secret read's outcome.

    Database triggers (created by the migrations) raise ``generation`` on
    every change to secrets, their versions, KEKs, API tokens, the policy
    state, and the status or name of people and service accounts. A server
    that decided reads from a cached copy of those tables compares this value
    in the transaction that records the reads, so a change made by any
    process is seen before a cached decision is released.
    """

    __tablename__ = "vault_read_generation"

    id: Mapped[int] = mapped_column(primary_key=True, autoincrement=False)
    generation: Mapped[int] = mapped_column(BigInteger)
