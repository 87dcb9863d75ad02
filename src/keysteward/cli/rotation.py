"""Rotation commands: ``rotate`` and the ``rotation`` group (list, resume, ...)."""

import sys
from typing import Annotated, Any

import typer

from keysteward.cli._context import (
    CliState,
    console,
    error_console,
    print_json,
    state_of,
)
from keysteward.errors import InvalidInputError

JsonOption = Annotated[
    bool, typer.Option("--json", help="Print JSON instead of a table.")
]

rotation_app = typer.Typer(
    help="Inspect, resume and schedule secret rotations.", no_args_is_help=True
)

# Exit code when any rotation of the run failed or was rolled back.
EXIT_ROTATION_FAILED = 1
UNSUCCESSFUL_STATES = ("failed", "rolled_back", "rolling_back")


def register(app: typer.Typer) -> None:
    app.command()(rotate)
    app.add_typer(rotation_app, name="rotation")


def _keyring(state: CliState) -> Any:
    from keysteward.vault.keys import keyring_for_home

    return keyring_for_home(state.settings.home)


def _actor() -> str:
    from keysteward.cli.vault import operator_actor

    return operator_actor()


def rotate(
    ctx: typer.Context,
    targets: Annotated[
        list[str] | None,
        typer.Argument(
            metavar="CREDENTIAL_OR_SECRET",
            help="Secret names, or inventory credential ids of vaulted secrets.",
            show_default=False,
        ),
    ] = None,
    due: Annotated[
        bool, typer.Option("--due", help="Rotate every secret past its maximum age.")
    ] = False,
    dry_run: Annotated[
        bool, typer.Option("--dry-run", help="Show what would rotate; change nothing.")
    ] = False,
    json_output: JsonOption = False,
) -> None:
    """Rotate secrets on their target systems, as far as each can go now.

    A rotation waiting out its grace period, or for a person to put a new
    value, stays open; `keysteward rotation resume` or the scheduler
    finishes it. Exits 1 when a rotation failed or was rolled back.
    """
    if due == bool(targets):
        raise InvalidInputError(
            "give either --due or one or more secret names or credential ids"
        )
    state = state_of(ctx)
    names = _due_names(state) if due else list(targets or [])
    # Check every target before rotating any, so one bad name changes nothing.
    plan = _plan(state, names)
    if dry_run:
        _print_plan(plan, json_output)
        return
    results = _rotate_all(state, names, json_output)
    _print_results(results, json_output)
    if any(result["state"] in UNSUCCESSFUL_STATES for result in results):
        raise typer.Exit(EXIT_ROTATION_FAILED)


def _due_names(state: CliState) -> list[str]:
    from keysteward.audit.config import load_audit_config
    from keysteward.clock import utcnow
    from keysteward.rotation.scheduler import due_secrets

    config = load_audit_config(state.settings)
    with state.store.session() as session:
        return [item.name for item in due_secrets(session, config, utcnow())]


def _rotate_all(
    state: CliState, names: list[str], json_output: bool
) -> list[dict[str, Any]]:
    from rich.progress import Progress

    from keysteward.rotation.services import rotate_secret

    keyring = _keyring(state)
    actor = _actor()
    show = sys.stderr.isatty() and not json_output and len(names) > 1
    results = []
    with Progress(console=error_console, disable=not show) as progress:
        task = progress.add_task("Rotating", total=len(names))
        for name in names:
            result = rotate_secret(state.store, keyring, name, actor=actor)
            results.append(result.as_dict())
            progress.advance(task)
    return results


def _plan(state: CliState, names: list[str]) -> list[dict[str, Any]]:
    from keysteward.rotation.services import plan_rotation

    with state.store.session() as session:
        return [plan_rotation(session, name) for name in names]


def _print_plan(plan: list[dict[str, Any]], json_output: bool) -> None:
    if json_output:
        print_json(plan)
        return
    if not plan:
        console.print("Nothing to rotate.")
        return
    for item in plan:
        console.print(
            f"would rotate {item['secret']} with rotator {item['rotator']}"
            + (
                f" (continues rotation {item['active_rotation']})"
                if item["active_rotation"]
                else ""
            )
        )


def _print_results(results: list[dict[str, Any]], json_output: bool) -> None:
    from rich.table import Table

    if json_output:
        print_json(results)
        return
    if not results:
        console.print("Nothing to rotate.")
        return
    table = Table("Rotation", "Secret", "Rotator", "State", "Note")
    for result in results:
        note = result["last_error"] or (
            "" if result["driven"] else "held by another process"
        )
        table.add_row(
            str(result["rotation_id"]),
            result["secret"],
            result["rotator"],
            result["state"],
            note,
        )
    console.print(table)


@rotation_app.command("list")
def rotation_list(
    ctx: typer.Context,
    active: Annotated[
        bool, typer.Option("--active", help="Only rotations that are not finished.")
    ] = False,
    json_output: JsonOption = False,
) -> None:
    """List rotations and the state of each, newest first."""
    from rich.table import Table

    from keysteward.rotation.queries import list_rotations

    with state_of(ctx).store.session() as session:
        rows = list_rotations(session, include_finished=not active)
    if json_output:
        print_json(rows)
        return
    table = Table("Id", "Secret", "Rotator", "State", "Reason", "Requested", "Error")
    for row in rows:
        table.add_row(
            str(row["id"]),
            row["secret"],
            row["rotator"],
            row["state"],
            row["reason"],
            row["requested_at"].strftime("%Y-%m-%d %H:%M"),
            row["last_error"] or "",
        )
    console.print(table)


@rotation_app.command("resume")
def rotation_resume(ctx: typer.Context, json_output: JsonOption = False) -> None:
    """Finish or roll back every interrupted rotation. Exits 1 on a failure."""
    from keysteward.rotation.services import resume_rotations

    state = state_of(ctx)
    results = resume_rotations(state.store, _keyring(state), actor=_actor())
    rows = [result.as_dict() for result in results]
    _print_results(rows, json_output)
    if any(row["state"] in UNSUCCESSFUL_STATES for row in rows):
        raise typer.Exit(EXIT_ROTATION_FAILED)


@rotation_app.command("abandon")
def rotation_abandon(
    ctx: typer.Context,
    rotation_id: Annotated[int, typer.Argument(help="Rotation id from the list.")],
) -> None:
    """Mark a stuck rotation failed; the target and the vault stay as they are.

    Check which vault version works on the target (`keysteward secret
    versions NAME`) and promote it before rotating again.
    """
    from keysteward.rotation.services import abandon_rotation

    with state_of(ctx).store.session() as session:
        rotation = abandon_rotation(session, rotation_id, actor=_actor())
        versions = (rotation.old_version, rotation.new_version)
    error_console.print(
        f"Rotation {rotation_id} abandoned; old version {versions[0]}, "
        f"new version {versions[1]} are still in the vault."
    )


@rotation_app.command("tasks")
def rotation_tasks(ctx: typer.Context, json_output: JsonOption = False) -> None:
    """List open manual rotation tasks: the owner must put a new value."""
    from rich.table import Table

    from keysteward.rotation.queries import list_tasks

    with state_of(ctx).store.session() as session:
        rows = list_tasks(session)
    if json_output:
        print_json(rows)
        return
    if not rows:
        console.print("No open rotation tasks.")
        return
    table = Table("Id", "Secret", "Owner", "Due", "Overdue", "What to do")
    for row in rows:
        due = row["due_at"]
        table.add_row(
            str(row["id"]),
            row["secret"],
            row["owner"] or "(no owner)",
            due.strftime("%Y-%m-%d") if due else "",
            "yes" if row["overdue"] else "no",
            row["instructions"],
        )
    console.print(table)


@rotation_app.command("scheduler")
def rotation_scheduler(
    ctx: typer.Context,
    interval: Annotated[
        int, typer.Option(min=1, help="Seconds between scheduler passes.")
    ] = 300,
    once: Annotated[
        bool, typer.Option("--once", help="Run one pass and exit.")
    ] = False,
) -> None:
    """Rotate due secrets and resume open rotations, every --interval seconds.

    Several schedulers may run against one store; only one pass runs at a
    time. Stop it with Ctrl-C or SIGTERM.
    """
    from datetime import timedelta

    from keysteward.rotation.scheduler import run_scheduler_loop

    state = state_of(ctx)
    error_console.print(
        f"Rotation scheduler started (every {interval} s); stop with Ctrl-C."
    )
    try:
        run_scheduler_loop(
            state.store, timedelta(seconds=interval), max_passes=1 if once else None
        )
    except KeyboardInterrupt:
        error_console.print("Rotation scheduler stopped.")
