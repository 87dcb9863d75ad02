"""Vault commands: ``secret ...``, ``rekey``, ``backup``, ``restore`` and ``run``."""

import getpass
import socket
import sys
from pathlib import Path
from typing import Annotated, Any

import typer

from keysteward.cli._context import (
    CliState,
    console,
    error_console,
    print_json,
    state_of,
)
from keysteward.errors import InvalidInputError, KeystewardError

JsonOption = Annotated[
    bool, typer.Option("--json", help="Print JSON instead of a table.")
]

secret_app = typer.Typer(
    help="Store, read and retire secret values.", no_args_is_help=True
)


class DecryptionFailedError(KeystewardError):
    exit_code = 6


DECRYPTION_FAILED = (
    "decryption failed: the master key does not match this store, or the stored "
    "data was changed; check KEYSTEWARD_KEY_PROVIDER and its key"
)


def register(app: typer.Typer) -> None:
    app.add_typer(secret_app, name="secret")
    app.command()(rekey)
    app.command()(backup)
    app.command()(restore)
    app.command(
        context_settings={"allow_extra_args": True, "ignore_unknown_options": True}
    )(run)


def operator_actor() -> str:
    """Return the event actor for a command run by a local operator.

    Every command records this one ``cli:<OS user>`` form, so that
    ``events list --actor`` finds all of one user's commands.
    """
    try:
        return f"cli:{getpass.getuser()}"
    except (KeyError, OSError):
        # getpass finds no name when the process's uid has no passwd entry.
        return "cli:unknown"


def local_source() -> str:
    """Return the event source for a read made on this machine."""
    return f"local:{socket.gethostname()}"[:100]


def _keyring(state: CliState) -> Any:
    from keysteward.vault.keys import keyring_for_home

    return keyring_for_home(state.settings.home)


def _read_value(file: Path | None) -> bytes:
    if file is not None and str(file) != "-":
        try:
            value = file.read_bytes()
        except OSError as exc:
            raise InvalidInputError(
                f"cannot read {file}: {exc.strerror}; give a readable file"
            ) from None
        return value
    if sys.stdin.isatty():
        return getpass.getpass("secret value (input hidden): ").encode()
    return sys.stdin.buffer.read()


def _resolve_metadata(
    state: CliState,
    session: Any,
    credential_id: int | None,
    system: str | None,
    owner: str | None,
    rotation_days: int | None,
    description: str | None,
) -> Any:
    from sqlalchemy import select

    from keysteward.credentials.models import Credential
    from keysteward.identities.models import Person
    from keysteward.systems.models import System
    from keysteward.vault.services import SecretMetadata

    if credential_id is not None and session.get(Credential, credential_id) is None:
        raise InvalidInputError(
            f"credential {credential_id} not found; give an id from the inventory"
        )
    system_id = None
    if system is not None:
        system_id = session.scalar(select(System.id).where(System.name == system))
        if system_id is None:
            raise InvalidInputError(f"system {system!r} not found; add it first")
    owner_id = None
    if owner is not None:
        owner_id = session.scalar(select(Person.id).where(Person.email == owner))
        if owner_id is None:
            raise InvalidInputError(f"person {owner!r} not found; give an email")
    if rotation_days is not None and rotation_days < 1:
        raise InvalidInputError(
            f"invalid --rotation-days {rotation_days}; give at least 1 day"
        )
    return SecretMetadata(
        credential_id=credential_id,
        system_id=system_id,
        owner_id=owner_id,
        rotation_days=rotation_days,
        description=description,
    )


@secret_app.command("put")
def secret_put(
    ctx: typer.Context,
    name: Annotated[str, typer.Argument(help="Secret name, e.g. hubspot.")],
    # Collects extra arguments so that the error never repeats them, because
    # Click's "unexpected extra argument" message prints a value typed there.
    # NOTE: hidden only drops it from the help list; the usage line still
    # shows "[extra]...".
    extra: Annotated[list[str] | None, typer.Argument(hidden=True)] = None,
    file: Annotated[
        Path | None,
        typer.Option(
            "--file", help="Read the value from this file, or from stdin with -."
        ),
    ] = None,
    credential_id: Annotated[
        int | None, typer.Option(help="Inventory credential id this value belongs to.")
    ] = None,
    system: Annotated[str | None, typer.Option(help="System name.")] = None,
    owner: Annotated[str | None, typer.Option(help="Owner's email.")] = None,
    rotation_days: Annotated[
        int | None, typer.Option(help="Rotate at least every this many days.")
    ] = None,
    description: Annotated[str | None, typer.Option(help="Free text.")] = None,
    pending: Annotated[
        bool,
        typer.Option(help="Store as pending; `secret promote` makes it current."),
    ] = False,
) -> None:
    """Store a new version of a secret, read from stdin or --file (never argv).

    Input is stored byte for byte, so `echo` adds a trailing newline; use
    `printf %s` to avoid it.
    """
    from keysteward.crypto.aead import DecryptionError
    from keysteward.vault.services import put_secret

    if extra:
        raise InvalidInputError(
            f"secret put takes one argument, NAME, and got {1 + len(extra)}; "
            "secret values are read from stdin or --file, never from the command "
            "line"
        )
    state = state_of(ctx)
    value = _read_value(file)
    keyring = _keyring(state)
    try:
        with state.store.session() as session:
            metadata = _resolve_metadata(
                state, session, credential_id, system, owner, rotation_days, description
            )
            row = put_secret(
                session,
                keyring,
                name,
                value,
                actor=operator_actor(),
                metadata=metadata,
                pending=pending,
            )
            number, status = row.version, row.status
    except DecryptionError:
        raise DecryptionFailedError(DECRYPTION_FAILED) from None
    error_console.print(f"Stored {name} version {number} ({status}).")


@secret_app.command("get")
def secret_get(
    ctx: typer.Context,
    name: str,
    version: Annotated[
        int | None, typer.Option(help="Version number [default: current].")
    ] = None,
    yes: Annotated[
        bool, typer.Option("--yes", help="Print to a terminal without asking.")
    ] = False,
) -> None:
    """Print a secret's value: raw when piped, after a prompt on a terminal."""
    from keysteward.crypto.aead import DecryptionError
    from keysteward.vault.services import read_secret_as_operator

    state = state_of(ctx)
    if sys.stdout.isatty() and not yes:
        typer.confirm(f"Print secret {name} to the terminal?", abort=True)
    keyring = _keyring(state)
    try:
        with state.store.session() as session:
            read = read_secret_as_operator(
                session,
                keyring,
                name,
                actor=operator_actor(),
                version=version,
                source=local_source(),
            )
    except DecryptionError:
        raise DecryptionFailedError(DECRYPTION_FAILED) from None
    sys.stdout.buffer.write(read.value)
    sys.stdout.buffer.flush()


@secret_app.command("list")
def secret_list(ctx: typer.Context, json_output: JsonOption = False) -> None:
    """List secrets with their current version, without values."""
    from rich.table import Table

    from keysteward.clock import format_timestamp
    from keysteward.vault.services import list_secrets

    with state_of(ctx).store.session() as session:
        rows = list_secrets(session)
    if json_output:
        print_json(rows)
        return
    table = Table("name", "current", "updated", "rotation days", "credential")
    for row in rows:
        table.add_row(
            str(row["name"]),
            str(row["current_version"] or "-"),
            format_timestamp(row["updated_at"]),
            str(row["rotation_days"] or "-"),
            str(row["credential_id"] or "-"),
        )
    console.print(table)


@secret_app.command("versions")
def secret_versions(
    ctx: typer.Context, name: str, json_output: JsonOption = False
) -> None:
    """List the versions of a secret and their status."""
    from rich.table import Table

    from keysteward.vault.services import list_versions

    with state_of(ctx).store.session() as session:
        rows = list_versions(session, name)
    if json_output:
        print_json(rows)
        return
    table = Table("version", "status", "created", "by", "KEK")
    for row in rows:
        table.add_row(
            str(row["version"]),
            str(row["status"]),
            str(row["created_at"]),
            str(row["created_by"]),
            str(row["kek_id"]),
        )
    console.print(table)


@secret_app.command("retire")
def secret_retire(
    ctx: typer.Context,
    name: str,
    version: Annotated[int, typer.Option(help="Version number to retire.")],
) -> None:
    """Retire a version that is not current, erasing its ciphertext."""
    from keysteward.vault.services import retire_version

    with state_of(ctx).store.session() as session:
        retire_version(session, name, version, actor=operator_actor())
    error_console.print(f"Retired {name} version {version}.")


@secret_app.command("promote")
def secret_promote(
    ctx: typer.Context,
    name: str,
    version: Annotated[int, typer.Option(help="Version number to make current.")],
) -> None:
    """Make a pending or previous version current."""
    from keysteward.vault.services import promote_version

    with state_of(ctx).store.session() as session:
        promote_version(session, name, version, actor=operator_actor())
    error_console.print(f"{name} version {version} is current.")


def rekey(
    ctx: typer.Context,
    batch_size: Annotated[
        int, typer.Option(min=1, help="Rows rewrapped per transaction.")
    ] = 200,
    json_output: JsonOption = False,
) -> None:
    """Create a new KEK and rewrap every data key under it; resumes after a crash."""
    from rich.progress import Progress

    from keysteward.crypto.aead import DecryptionError
    from keysteward.vault.rekey import rekey as run_rekey

    state = state_of(ctx)
    keyring = _keyring(state)
    show = sys.stderr.isatty() and not json_output
    try:
        with Progress(console=error_console, disable=not show) as progress:
            task = progress.add_task("Rewrapping data keys", total=None)
            result = run_rekey(
                state.store,
                keyring,
                actor=operator_actor(),
                batch_size=batch_size,
                on_progress=lambda done, total: progress.update(
                    task, completed=done, total=total
                ),
            )
    except DecryptionError:
        raise DecryptionFailedError(DECRYPTION_FAILED) from None
    summary = {
        "kek_id": result.kek_id,
        "rewrapped": result.rewrapped,
        "retired_kek_ids": result.retired_kek_ids,
        "resumed": result.resumed,
    }
    if json_output:
        print_json(summary)
        return
    resumed = " (resumed)" if result.resumed else ""
    console.print(
        f"Rekeyed{resumed}: {result.rewrapped} data keys now under KEK "
        f"{result.kek_id}; retired KEKs: {result.retired_kek_ids or 'none'}."
    )


def backup(
    ctx: typer.Context,
    file: Annotated[Path, typer.Argument(help="Backup file to write.")],
    json_output: JsonOption = False,
) -> None:
    """Write an encrypted backup of every table, readable with the same master key."""
    from keysteward.vault.backup import write_backup

    state = state_of(ctx)
    counts = write_backup(state.store, _keyring(state), file)
    if json_output:
        print_json({"file": str(file), "tables": counts})
        return
    console.print(f"Wrote {sum(counts.values())} rows to {file}.")


def restore(
    ctx: typer.Context,
    file: Annotated[Path, typer.Argument(help="Backup file to read.", exists=True)],
    json_output: JsonOption = False,
) -> None:
    """Load a backup into an empty store, then check that every secret decrypts."""
    from keysteward.crypto.aead import DecryptionError
    from keysteward.vault.backup import restore_backup

    state = state_of(ctx)
    try:
        result = restore_backup(state.store, _keyring(state), file)
    except DecryptionError:
        raise DecryptionFailedError(
            f"{file} does not decrypt under this master key, or it was changed; "
            "restore with the key the backup was written with"
        ) from None
    if json_output:
        print_json(
            {"tables": result.rows, "verified_versions": result.verified_versions}
        )
        return
    console.print(
        f"Restored {sum(result.rows.values())} rows; "
        f"{result.verified_versions} secret versions decrypt."
    )


def run(
    ctx: typer.Context,
    service_account: Annotated[
        str, typer.Option("--as", help="Service account whose secrets to inject.")
    ],
    command: Annotated[list[str], typer.Argument(help="Command to start, after `--`.")],
    env_map: Annotated[
        Path | None,
        typer.Option(help="YAML file mapping ENV_NAME: secret-name [default: all]."),
    ] = None,
) -> None:
    """Start COMMAND with the secrets SERVICE_ACCOUNT may read as variables.

    Values go only into the child's environment, never to disk. Secrets the
    account may not read are left out with a warning. The child's exit code
    is passed through.
    """
    from keysteward.vault.delivery import run_with_secrets

    state = state_of(ctx)
    code = run_with_secrets(
        state.store,
        _keyring(state),
        service_account,
        command,
        env_map=env_map,
        warn=lambda message: error_console.print(f"warning: {message}"),
        source=local_source(),
    )
    raise typer.Exit(code)
