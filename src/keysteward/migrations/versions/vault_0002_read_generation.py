"""add the read generation counter and the triggers that raise it

Revision ID: vault_0002_read_generation
Revises: vault_0001_secrets
"""

import secrets
from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "vault_0002_read_generation"
down_revision: str | Sequence[str] | None = "vault_0001_secrets"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = (
    "tokens_0001_api_tokens",
    "authz_0001_policy",
)

FUNCTION = "keysteward_raise_read_generation"
# Transaction-local flag: set once the transaction has raised the counter.
RAISED_SETTING = "keysteward.read_generation_raised"
# Tables whose changes can alter a secret read, with the columns whose update
# counts (None: any update). Other updates, such as an API token's
# last_used_at, leave cached read decisions valid.
WATCHED: dict[str, tuple[str, ...] | None] = {
    "people": ("status", "email"),
    "service_accounts": ("status", "name"),
    "api_tokens": (
        "digest",
        "principal_type",
        "principal_id",
        "roles",
        "expires_at",
        "revoked_at",
    ),
    "authz_policy_state": None,
    "vault_secrets": ("name",),
    "vault_secret_versions": None,
    "vault_keks": None,
}
# An upsert, so the row comes back after the table was emptied by hand
# (TRUNCATE); a random start keeps cached generations from matching it.
RAISE_POSTGRESQL = (
    "INSERT INTO vault_read_generation (id, generation) "
    "VALUES (1, floor(random() * 4611686018427387903)::bigint) "
    "ON CONFLICT (id) DO UPDATE "
    "SET generation = vault_read_generation.generation + 1"
)
RAISE_SQLITE = (
    "INSERT INTO vault_read_generation (id, generation) "
    "VALUES (1, random() & 4611686018427387903) "
    "ON CONFLICT (id) DO UPDATE SET generation = generation + 1"
)


def upgrade() -> None:
    op.create_table(
        "vault_read_generation",
        sa.Column("id", sa.Integer(), autoincrement=False, nullable=False),
        sa.Column("generation", sa.BigInteger(), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_vault_read_generation")),
    )
    # A random start, so a server's cached generation from before a restore
    # or a rebuilt table never matches by chance.
    op.execute(
        sa.text(
            "INSERT INTO vault_read_generation (id, generation) VALUES (1, :start)"
        ).bindparams(start=secrets.randbits(62))
    )
    if op.get_bind().dialect.name == "postgresql":
        _create_postgresql_triggers()
    else:
        _create_sqlite_triggers()


def downgrade() -> None:
    if op.get_bind().dialect.name == "postgresql":
        for table in WATCHED:
            op.execute(f"DROP TRIGGER IF EXISTS {table}_read_generation ON {table}")
            op.execute(
                f"DROP TRIGGER IF EXISTS {table}_read_generation_truncate ON {table}"
            )
        op.execute(f"DROP FUNCTION IF EXISTS {FUNCTION}()")
    else:
        for table in WATCHED:
            for operation in ("insert", "update", "delete"):
                op.execute(
                    f"DROP TRIGGER IF EXISTS {table}_read_generation_{operation}"
                )
    op.drop_table("vault_read_generation")


def _create_postgresql_triggers() -> None:
    # The counter row is locked from its update to the commit. Raised by an
    # ordinary trigger, it would be locked in the middle of a transaction, and
    # two transactions that change watched rows in crossed order would
    # deadlock on it. Deferred constraint triggers raise it at commit, after
    # every other lock is taken, and a transaction-local setting makes the
    # first of them raise it once for the whole transaction.
    op.execute(
        f"""
        CREATE OR REPLACE FUNCTION {FUNCTION}() RETURNS trigger
        LANGUAGE plpgsql AS $$
        BEGIN
            IF current_setting('{RAISED_SETTING}', true) IS DISTINCT FROM 'on'
            THEN
                PERFORM set_config('{RAISED_SETTING}', 'on', true);
                {RAISE_POSTGRESQL};
            END IF;
            RETURN NULL;
        END;
        $$
        """
    )
    for table, columns in WATCHED.items():
        update = "UPDATE" if columns is None else f"UPDATE OF {', '.join(columns)}"
        op.execute(
            f"CREATE CONSTRAINT TRIGGER {table}_read_generation "
            f"AFTER INSERT OR DELETE OR {update} ON {table} "
            "DEFERRABLE INITIALLY DEFERRED "
            f"FOR EACH ROW EXECUTE FUNCTION {FUNCTION}()"
        )
        # Constraint triggers cannot fire on TRUNCATE, which locks the whole
        # table anyway.
        op.execute(
            f"CREATE TRIGGER {table}_read_generation_truncate "
            f"AFTER TRUNCATE ON {table} "
            f"FOR EACH STATEMENT EXECUTE FUNCTION {FUNCTION}()"
        )


def _create_sqlite_triggers() -> None:
    # SQLite has row triggers only.
    for table, columns in WATCHED.items():
        update = "UPDATE" if columns is None else f"UPDATE OF {', '.join(columns)}"
        for name, operation in (
            ("insert", "INSERT"),
            ("update", update),
            ("delete", "DELETE"),
        ):
            op.execute(
                f"CREATE TRIGGER {table}_read_generation_{name} "
                f"AFTER {operation} ON {table} BEGIN {RAISE_SQLITE}; END"
            )
