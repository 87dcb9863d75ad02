"""``keysteward init`` and ``keysteward status``: create and describe the store."""

from typing import Annotated, Any

import typer
from rich.table import Table
from sqlalchemy import func, select

import keysteward.models  # noqa: F401  (registers every table for the counts)
from keysteward.cli._context import console, print_json, state_of
from keysteward.db import Base, Store, pending_revisions, schema_revisions

JsonOption = Annotated[
    bool, typer.Option("--json", help="Print JSON instead of a table.")
]


def register(app: typer.Typer) -> None:
    app.command()(init)
    app.command()(status)


def init(ctx: typer.Context, json_output: JsonOption = False) -> None:
    """Create the store (and its folder) if needed and apply every migration.

    Also creates the master key file, or the passphrase parameters, that
    KEYSTEWARD_KEY_PROVIDER needs, keeping any that exist.
    """
    from keysteward.crypto.keyring import prepare_key_provider

    state = state_of(ctx)
    store = state.store
    _reject_new_key_for_existing_vault(store)
    summary = {
        "store": store.url,
        "backend": store.engine.dialect.name,
        "schema_version": sorted(schema_revisions(store.engine)),
        "master_key": prepare_key_provider(state.settings.home),
    }
    if json_output:
        print_json(summary)
        return
    schema = ", ".join(summary["schema_version"])
    console.print(f"Store ready at {summary['store']} (schema {schema}).")
    console.print(f"Master key: {summary['master_key']}.")


def _reject_new_key_for_existing_vault(store: Store) -> None:
    """Raise ConfigError when init would create a master key for stored KEKs.

    The vault's key-encryption keys are wrapped under the master key, so a new
    key can never decrypt them and every later read would fail.
    """
    from keysteward.crypto.keyring import key_material_path
    from keysteward.errors import ConfigError
    from keysteward.vault.models import KeyEncryptionKey

    path = key_material_path(store.settings.home)
    if path is None or path.exists():
        return
    with store.session() as session:
        keks = session.scalar(select(func.count()).select_from(KeyEncryptionKey))
    if keks:
        raise ConfigError(
            f"{path} is missing, but the vault has {keks} key-encryption keys "
            f"wrapped under the key it held; restore {path.name} from your backup "
            f"to {path}. A new key cannot decrypt the stored secrets, so init "
            "does not create one"
        )


def describe_store(store: Store) -> dict[str, Any]:
    """Return the store's location, schema version and row count per table."""
    counts: dict[str, int] = {}
    with store.session() as session:
        for table in sorted(Base.metadata.sorted_tables, key=lambda t: t.name):
            counts[table.name] = (
                session.scalar(select(func.count()).select_from(table)) or 0
            )
    current = schema_revisions(store.engine)
    return {
        "store": store.url,
        "backend": store.engine.dialect.name,
        "home": str(store.settings.home),
        "schema_version": sorted(current),
        "schema_up_to_date": not pending_revisions(store.engine),
        "tables": counts,
    }


def status(ctx: typer.Context, json_output: JsonOption = False) -> None:
    """Show where the store is, its schema version and how many rows each table has."""
    summary = describe_store(state_of(ctx).store)
    if json_output:
        print_json(summary)
        return
    console.print(f"Store: {summary['store']} ({summary['backend']})")
    console.print(f"Schema: {', '.join(summary['schema_version'])}")
    table = Table("table", "rows")
    for name, count in summary["tables"].items():
        table.add_row(name, str(count))
    console.print(table)
