"""record what each audit run judged against, and when findings were resolved

Revision ID: audit_0001_run_context
Revises: 0001_foundation
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "audit_0001_run_context"
down_revision: str | Sequence[str] | None = "0001_foundation"
branch_labels: str | Sequence[str] | None = ("audit",)
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("audit_runs") as batch_op:
        batch_op.add_column(sa.Column("as_of", sa.DateTime(timezone=True)))
        batch_op.add_column(
            sa.Column("parameters", sa.JSON(), nullable=False, server_default="{}")
        )
    with op.batch_alter_table("findings") as batch_op:
        batch_op.add_column(sa.Column("resolved_at", sa.DateTime(timezone=True)))
        batch_op.create_index("ix_findings_status", ["status"], unique=False)


def downgrade() -> None:
    with op.batch_alter_table("findings") as batch_op:
        batch_op.drop_index("ix_findings_status")
        batch_op.drop_column("resolved_at")
    with op.batch_alter_table("audit_runs") as batch_op:
        batch_op.drop_column("parameters")
        batch_op.drop_column("as_of")
