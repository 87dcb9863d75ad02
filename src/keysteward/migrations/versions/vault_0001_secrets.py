"""create the vault tables: KEKs, secrets, versions, rekey jobs

Revision ID: vault_0001_secrets
Revises: 0001_foundation
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "vault_0001_secrets"
down_revision: str | Sequence[str] | None = "0001_foundation"
branch_labels: str | Sequence[str] | None = ("vault",)
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "vault_keks",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("wrapped_key", sa.LargeBinary(), nullable=True),
        sa.Column("status", sa.String(length=20), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("retired_at", sa.DateTime(timezone=True), nullable=True),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_vault_keks")),
    )
    op.create_table(
        "vault_secrets",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("name", sa.String(length=200), nullable=False),
        sa.Column("description", sa.String(length=1000), nullable=True),
        sa.Column("credential_id", sa.Integer(), nullable=True),
        sa.Column("system_id", sa.Integer(), nullable=True),
        sa.Column("owner_id", sa.Integer(), nullable=True),
        sa.Column("rotation_days", sa.Integer(), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["credential_id"],
            ["credentials.id"],
            name=op.f("fk_vault_secrets_credential_id_credentials"),
            ondelete="SET NULL",
        ),
        sa.ForeignKeyConstraint(
            ["owner_id"], ["people.id"], name=op.f("fk_vault_secrets_owner_id_people")
        ),
        sa.ForeignKeyConstraint(
            ["system_id"],
            ["systems.id"],
            name=op.f("fk_vault_secrets_system_id_systems"),
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_vault_secrets")),
        sa.UniqueConstraint("name", name=op.f("uq_vault_secrets_name")),
    )
    op.create_table(
        "vault_secret_versions",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("secret_id", sa.Integer(), nullable=False),
        sa.Column("version", sa.Integer(), nullable=False),
        sa.Column("status", sa.String(length=20), nullable=False),
        sa.Column("ciphertext", sa.LargeBinary(), nullable=False),
        sa.Column("wrapped_key", sa.LargeBinary(), nullable=False),
        sa.Column("kek_id", sa.Integer(), nullable=False),
        sa.Column("created_by", sa.String(length=200), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("retired_at", sa.DateTime(timezone=True), nullable=True),
        sa.ForeignKeyConstraint(
            ["kek_id"],
            ["vault_keks.id"],
            name=op.f("fk_vault_secret_versions_kek_id_vault_keks"),
        ),
        sa.ForeignKeyConstraint(
            ["secret_id"],
            ["vault_secrets.id"],
            name=op.f("fk_vault_secret_versions_secret_id_vault_secrets"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_vault_secret_versions")),
        sa.UniqueConstraint(
            "secret_id",
            "version",
            name=op.f("uq_vault_secret_versions_secret_id_version"),
        ),
    )
    op.create_index(
        "ix_vault_secret_versions_kek_id", "vault_secret_versions", ["kek_id"]
    )
    op.create_table(
        "vault_rekey_jobs",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("target_kek_id", sa.Integer(), nullable=False),
        sa.Column("status", sa.String(length=20), nullable=False),
        sa.Column("rewrapped", sa.Integer(), nullable=False),
        sa.Column("started_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("finished_at", sa.DateTime(timezone=True), nullable=True),
        sa.ForeignKeyConstraint(
            ["target_kek_id"],
            ["vault_keks.id"],
            name=op.f("fk_vault_rekey_jobs_target_kek_id_vault_keks"),
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_vault_rekey_jobs")),
    )


def downgrade() -> None:
    op.drop_table("vault_rekey_jobs")
    op.drop_index("ix_vault_secret_versions_kek_id", "vault_secret_versions")
    op.drop_table("vault_secret_versions")
    op.drop_table("vault_secrets")
    op.drop_table("vault_keks")
