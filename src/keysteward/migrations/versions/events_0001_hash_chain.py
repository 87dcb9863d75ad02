"""chain the event log: sequence, digests, chain head and signed checkpoints

Revision ID: events_0001_hash_chain
Revises: 0001_foundation

Events recorded before this revision are chained in id order. The
append-only triggers are dropped while those rows get their chain fields and
created again afterwards; on SQLite ``batch_alter_table`` rebuilds the table,
which drops its triggers anyway.
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

from keysteward.events.chain import GENESIS_DIGEST, canonical_fields, compute_digest

revision: str = "events_0001_hash_chain"
down_revision: str | Sequence[str] | None = "0001_foundation"
branch_labels: str | Sequence[str] | None = ("events",)
depends_on: str | Sequence[str] | None = None

_events = sa.table(
    "events",
    sa.column("id", sa.Integer()),
    sa.column("occurred_at", sa.DateTime(timezone=True)),
    sa.column("actor", sa.String()),
    sa.column("action", sa.String()),
    sa.column("target_type", sa.String()),
    sa.column("target_id", sa.String()),
    sa.column("outcome", sa.String()),
    sa.column("source_address", sa.String()),
    sa.column("request_id", sa.String()),
    sa.column("details", sa.JSON()),
    sa.column("sequence", sa.Integer()),
    sa.column("previous_digest", sa.String()),
    sa.column("digest", sa.String()),
)


def upgrade() -> None:
    _drop_append_only_triggers()
    with op.batch_alter_table("events", schema=None) as batch_op:
        batch_op.add_column(sa.Column("sequence", sa.Integer(), nullable=True))
        batch_op.add_column(
            sa.Column("previous_digest", sa.String(length=64), nullable=True)
        )
        batch_op.add_column(sa.Column("digest", sa.String(length=64), nullable=True))
    last_sequence, last_digest = _chain_existing_events()
    with op.batch_alter_table("events", schema=None) as batch_op:
        batch_op.alter_column("sequence", existing_type=sa.Integer(), nullable=False)
        batch_op.alter_column(
            "previous_digest", existing_type=sa.String(length=64), nullable=False
        )
        batch_op.alter_column(
            "digest", existing_type=sa.String(length=64), nullable=False
        )
        batch_op.create_unique_constraint("uq_events_sequence", ["sequence"])

    head = op.create_table(
        "event_chain_head",
        sa.Column("id", sa.Integer(), autoincrement=False, nullable=False),
        sa.Column("last_sequence", sa.Integer(), nullable=False),
        sa.Column("last_digest", sa.String(length=64), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_event_chain_head")),
    )
    op.bulk_insert(
        head, [{"id": 1, "last_sequence": last_sequence, "last_digest": last_digest}]
    )
    op.create_table(
        "event_checkpoints",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("sequence", sa.Integer(), nullable=False),
        sa.Column("digest", sa.String(length=64), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("public_key", sa.String(length=64), nullable=False),
        sa.Column("signature", sa.String(length=128), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_event_checkpoints")),
    )
    op.create_index(
        op.f("ix_event_checkpoints_sequence"), "event_checkpoints", ["sequence"]
    )
    _create_append_only_triggers()


def downgrade() -> None:
    _drop_append_only_triggers()
    op.drop_index(op.f("ix_event_checkpoints_sequence"), "event_checkpoints")
    op.drop_table("event_checkpoints")
    op.drop_table("event_chain_head")
    with op.batch_alter_table("events", schema=None) as batch_op:
        batch_op.drop_constraint("uq_events_sequence", type_="unique")
        batch_op.drop_column("digest")
        batch_op.drop_column("previous_digest")
        batch_op.drop_column("sequence")
    _create_append_only_triggers(tables=("events",))


def _chain_existing_events() -> tuple[int, str]:
    bind = op.get_bind()
    rows = bind.execute(sa.select(_events).order_by(_events.c.id)).all()
    sequence, digest = 0, GENESIS_DIGEST
    for row in rows:
        sequence += 1
        fields = canonical_fields(
            sequence=sequence,
            previous_digest=digest,
            occurred_at=row.occurred_at,
            actor=row.actor,
            action=row.action,
            target_type=row.target_type,
            target_id=row.target_id,
            outcome=row.outcome,
            source_address=row.source_address,
            request_id=row.request_id,
            details=row.details,
        )
        previous, digest = digest, compute_digest(fields)
        bind.execute(
            sa.update(_events)
            .where(_events.c.id == row.id)
            .values(sequence=sequence, previous_digest=previous, digest=digest)
        )
    return sequence, digest


# Same guard as the foundation's events triggers, extended to checkpoints:
# any client of the database gets an error on UPDATE or DELETE. The events
# trigger on PostgreSQL reuses the foundation's function.
def _create_append_only_triggers(
    tables: tuple[str, ...] = ("events", "event_checkpoints"),
) -> None:
    if op.get_bind().dialect.name == "postgresql":
        for table in tables:
            function = "keysteward_events_append_only"
            if table != "events":
                function = f"keysteward_{table}_append_only"
                op.execute(
                    f"""
                    CREATE OR REPLACE FUNCTION {function}() RETURNS trigger
                    LANGUAGE plpgsql AS $$
                    BEGIN
                        RAISE EXCEPTION '{table} are append-only';
                    END;
                    $$
                    """
                )
            op.execute(
                f"CREATE TRIGGER {table}_append_only BEFORE UPDATE OR DELETE "
                f"ON {table} FOR EACH ROW EXECUTE FUNCTION {function}()"
            )
        return
    for table in tables:
        for operation in ("UPDATE", "DELETE"):
            op.execute(
                f"CREATE TRIGGER {table}_no_{operation.lower()} "
                f"BEFORE {operation} ON {table} "
                f"BEGIN SELECT RAISE(ABORT, '{table} are append-only'); END"
            )


def _drop_append_only_triggers() -> None:
    names = ("events", "event_checkpoints")
    if op.get_bind().dialect.name == "postgresql":
        op.execute("DROP TRIGGER IF EXISTS events_append_only ON events")
        if _table_exists("event_checkpoints"):
            op.execute(
                "DROP TRIGGER IF EXISTS event_checkpoints_append_only "
                "ON event_checkpoints"
            )
        op.execute("DROP FUNCTION IF EXISTS keysteward_event_checkpoints_append_only()")
        return
    for table in names:
        for operation in ("update", "delete"):
            op.execute(f"DROP TRIGGER IF EXISTS {table}_no_{operation}")


def _table_exists(name: str) -> bool:
    return sa.inspect(op.get_bind()).has_table(name)
