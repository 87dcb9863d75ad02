"""add role includes, groups, deny rules, policy state and usage

Revision ID: authz_0001_policy
Revises: 0001_foundation
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "authz_0001_policy"
down_revision: str | Sequence[str] | None = "0001_foundation"
branch_labels: str | Sequence[str] | None = ("authz",)
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "authz_role_includes",
        sa.Column("role_id", sa.Integer(), nullable=False),
        sa.Column("included_role_id", sa.Integer(), nullable=False),
        sa.ForeignKeyConstraint(
            ["role_id"],
            ["roles.id"],
            name=op.f("fk_authz_role_includes_role_id_roles"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["included_role_id"],
            ["roles.id"],
            name=op.f("fk_authz_role_includes_included_role_id_roles"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint(
            "role_id", "included_role_id", name=op.f("pk_authz_role_includes")
        ),
    )
    op.create_table(
        "authz_groups",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("name", sa.String(length=200), nullable=False),
        sa.Column("description", sa.String(length=1000), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_authz_groups")),
        sa.UniqueConstraint("name", name=op.f("uq_authz_groups_name")),
    )
    op.create_table(
        "authz_group_members",
        sa.Column("group_id", sa.Integer(), nullable=False),
        sa.Column("principal_type", sa.String(length=30), nullable=False),
        sa.Column("principal_id", sa.Integer(), nullable=False),
        sa.ForeignKeyConstraint(
            ["group_id"],
            ["authz_groups.id"],
            name=op.f("fk_authz_group_members_group_id_authz_groups"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint(
            "group_id",
            "principal_type",
            "principal_id",
            name=op.f("pk_authz_group_members"),
        ),
    )
    op.create_table(
        "authz_deny_rules",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("role_id", sa.Integer(), nullable=True),
        sa.Column("principal_type", sa.String(length=30), nullable=True),
        sa.Column("principal_id", sa.Integer(), nullable=True),
        sa.Column("permission", sa.String(length=700), nullable=False),
        sa.Column("unless", sa.JSON(), nullable=False),
        sa.Column("description", sa.String(length=1000), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.CheckConstraint(
            "role_id IS NULL OR principal_type IS NULL",
            name=op.f("ck_authz_deny_rules_one_target"),
        ),
        sa.ForeignKeyConstraint(
            ["role_id"],
            ["roles.id"],
            name=op.f("fk_authz_deny_rules_role_id_roles"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_authz_deny_rules")),
    )
    op.create_table(
        "authz_policy_state",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("version", sa.Integer(), nullable=False),
        sa.Column("digest", sa.String(length=64), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_authz_policy_state")),
    )
    op.create_table(
        "authz_usage",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("principal", sa.String(length=360), nullable=False),
        sa.Column("permission", sa.String(length=700), nullable=False),
        sa.Column("day", sa.Date(), nullable=False),
        sa.Column("allowed_count", sa.Integer(), nullable=False),
        sa.Column("denied_count", sa.Integer(), nullable=False),
        sa.Column("last_seen_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_authz_usage")),
        sa.UniqueConstraint(
            "principal",
            "permission",
            "day",
            name=op.f("uq_authz_usage_principal_permission_day"),
        ),
    )
    with op.batch_alter_table("authz_usage", schema=None) as batch_op:
        batch_op.create_index("ix_authz_usage_day", ["day"], unique=False)


def downgrade() -> None:
    with op.batch_alter_table("authz_usage", schema=None) as batch_op:
        batch_op.drop_index("ix_authz_usage_day")
    op.drop_table("authz_usage")
    op.drop_table("authz_policy_state")
    op.drop_table("authz_deny_rules")
    op.drop_table("authz_group_members")
    op.drop_table("authz_groups")
    op.drop_table("authz_role_includes")
