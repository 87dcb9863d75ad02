"""create the rotation request table used by offboarding and reviews

Revision ID: offboarding_0001_rotation
Revises: 0001_foundation
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "offboarding_0001_rotation"
down_revision: str | Sequence[str] | None = "0001_foundation"
branch_labels: str | Sequence[str] | None = ("offboarding",)
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "rotation_requests",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("credential_id", sa.Integer(), nullable=False),
        sa.Column("reason", sa.String(length=500), nullable=False),
        sa.Column("origin", sa.String(length=30), nullable=False),
        sa.Column("requested_by", sa.String(length=200), nullable=False),
        sa.Column("status", sa.String(length=20), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["credential_id"],
            ["credentials.id"],
            name=op.f("fk_rotation_requests_credential_id_credentials"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_rotation_requests")),
    )
    op.create_index(
        "ix_rotation_requests_credential_id", "rotation_requests", ["credential_id"]
    )
    op.create_index("ix_rotation_requests_status", "rotation_requests", ["status"])


def downgrade() -> None:
    op.drop_index("ix_rotation_requests_status", table_name="rotation_requests")
    op.drop_index("ix_rotation_requests_credential_id", table_name="rotation_requests")
    op.drop_table("rotation_requests")
