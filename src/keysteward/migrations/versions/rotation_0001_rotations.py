"""create the rotation and rotation lease tables

Revision ID: rotation_0001_rotations
Revises: vault_0001_secrets
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "rotation_0001_rotations"
# Based on the vault's revision, not the foundation's, because the rotations
# table references vault secrets and must be created after them.
down_revision: str | Sequence[str] | None = "vault_0001_secrets"
branch_labels: str | Sequence[str] | None = ("rotation",)
depends_on: str | Sequence[str] | None = None

ACTIVE = "state NOT IN ('done', 'failed', 'rolled_back')"


def upgrade() -> None:
    op.create_table(
        "rotations",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("secret_id", sa.Integer(), nullable=False),
        sa.Column("credential_id", sa.Integer(), nullable=True),
        sa.Column("rotator", sa.String(length=50), nullable=False),
        sa.Column("state", sa.String(length=20), nullable=False),
        sa.Column("reason", sa.String(length=500), nullable=False),
        sa.Column("requested_by", sa.String(length=200), nullable=False),
        sa.Column("requested_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("old_version", sa.Integer(), nullable=True),
        sa.Column("new_version", sa.Integer(), nullable=True),
        sa.Column("grace_until", sa.DateTime(timezone=True), nullable=True),
        sa.Column("due_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("reminded_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("attempts", sa.Integer(), nullable=False),
        sa.Column("last_error", sa.String(length=1000), nullable=True),
        sa.Column("finished_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("details", sa.JSON(), nullable=False),
        sa.ForeignKeyConstraint(
            ["secret_id"],
            ["vault_secrets.id"],
            name=op.f("fk_rotations_secret_id_vault_secrets"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["credential_id"],
            ["credentials.id"],
            name=op.f("fk_rotations_credential_id_credentials"),
            ondelete="SET NULL",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_rotations")),
    )
    op.create_index(
        "uq_rotations_active_secret",
        "rotations",
        ["secret_id"],
        unique=True,
        postgresql_where=sa.text(ACTIVE),
        sqlite_where=sa.text(ACTIVE),
    )
    op.create_index("ix_rotations_state", "rotations", ["state"])
    op.create_table(
        "rotation_leases",
        sa.Column("name", sa.String(length=200), nullable=False),
        sa.Column("owner", sa.String(length=200), nullable=False),
        sa.Column("acquired_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("expires_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("name", name=op.f("pk_rotation_leases")),
    )


def downgrade() -> None:
    op.drop_table("rotation_leases")
    op.drop_index("ix_rotations_state", table_name="rotations")
    op.drop_index("uq_rotations_active_secret", table_name="rotations")
    op.drop_table("rotations")
