"""create the discovery_hits table

Revision ID: discovery_0001_hits
Revises: 0001_foundation
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "discovery_0001_hits"
down_revision: str | Sequence[str] | None = "0001_foundation"
branch_labels: str | Sequence[str] | None = ("discovery",)
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "discovery_hits",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("fingerprint", sa.String(length=64), nullable=False),
        sa.Column("location_key", sa.String(length=64), nullable=False),
        sa.Column("rule", sa.String(length=100), nullable=False),
        sa.Column("path", sa.String(length=2000), nullable=False),
        sa.Column("line", sa.Integer(), nullable=False),
        sa.Column("pointer", sa.String(length=500), nullable=True),
        sa.Column("commit", sa.String(length=64), nullable=True),
        sa.Column("author", sa.String(length=500), nullable=True),
        sa.Column("credential_id", sa.Integer(), nullable=True),
        sa.Column("first_seen_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("last_seen_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["credential_id"],
            ["credentials.id"],
            name=op.f("fk_discovery_hits_credential_id_credentials"),
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_discovery_hits")),
        sa.UniqueConstraint(
            "fingerprint",
            "location_key",
            name=op.f("uq_discovery_hits_fingerprint_location_key"),
        ),
    )
    with op.batch_alter_table("discovery_hits", schema=None) as batch_op:
        batch_op.create_index(
            "ix_discovery_hits_credential_id", ["credential_id"], unique=False
        )


def downgrade() -> None:
    with op.batch_alter_table("discovery_hits", schema=None) as batch_op:
        batch_op.drop_index("ix_discovery_hits_credential_id")
    op.drop_table("discovery_hits")
