"""add the chain head's seal, an HMAC that lets checkpoints skip re-reading events

Revision ID: events_0002_head_seal
Revises: events_0001_hash_chain
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "events_0002_head_seal"
down_revision: str | Sequence[str] | None = "events_0001_hash_chain"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    # Empty until the next checkpoint has verified the chain and sealed it.
    op.add_column(
        "event_chain_head", sa.Column("seal", sa.String(length=64), nullable=True)
    )


def downgrade() -> None:
    with op.batch_alter_table("event_chain_head", schema=None) as batch_op:
        batch_op.drop_column("seal")
