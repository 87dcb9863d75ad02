"""``keysteward import`` and ``keysteward inventory list|export``."""

import sys
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Annotated, Any

import typer

from keysteward.cli._context import console, print_json, state_of
from keysteward.errors import InvalidInputError

JsonOption = Annotated[bool, typer.Option("--json", help="Print JSON instead of text.")]
SOURCE_NAMES = (
    "aws, gcp, github, openai, anthropic, slack, okta, google_workspace, stripe, "
    "people, sheet or native"
)
# How many added/changed/retired credentials the text summary lists by name.
LISTED_PER_SECTION = 20

inventory_app = typer.Typer(
    help="List and export the credential inventory.", no_args_is_help=True
)


def register(app: typer.Typer) -> None:
    app.command("import")(import_files)
    app.add_typer(inventory_app, name="inventory")


def _actor() -> str:
    from keysteward.cli.vault import operator_actor

    return operator_actor()


def import_files(
    ctx: typer.Context,
    files: Annotated[
        list[Path],
        typer.Argument(
            help="Export files, or folders whose files are all imported (the "
            "people roster first).",
            show_default=False,
        ),
    ],
    source: Annotated[
        str | None,
        typer.Option(
            help=f"Format family of the files: {SOURCE_NAMES}. Detected "
            "from the content when left out."
        ),
    ] = None,
    dry_run: Annotated[
        bool,
        typer.Option(
            "--dry-run",
            help="Show what would be added, changed and retired; write nothing.",
        ),
    ] = False,
    json_output: JsonOption = False,
) -> None:
    """Import credential exports (AWS, GCP, GitHub, OpenAI, ...), rosters and sheets."""
    from keysteward.inventory.services import run_import

    store = state_of(ctx).store
    with _progress(quiet=json_output) as progress:
        report = run_import(
            store,
            files,
            source=source,
            dry_run=dry_run,
            actor=_actor(),
            progress=progress,
        )
    if json_output:
        print_json(report.as_dict())
        return
    _print_report(report.as_dict())


@contextmanager
def _progress(quiet: bool) -> Iterator[Callable[[str, int, int], None] | None]:
    """Yield a callback that drives a Rich progress bar on a terminal.

    Yields None when ``quiet`` or when standard error is not a terminal, so
    scripts and CI logs get no bar.
    """
    if quiet or not sys.stderr.isatty():
        yield None
        return
    from rich.console import Console
    from rich.progress import Progress

    with Progress(console=Console(stderr=True), transient=True) as bar:
        task = bar.add_task("Importing", total=None)

        def update(step: str, done: int, total: int) -> None:
            bar.update(task, description=step, completed=done, total=total)

        yield update


def _print_report(report: dict[str, Any]) -> None:
    for file in report["files"]:
        how = "detected" if file["detected"] else "given"
        typer.echo(f"{file['file']}: {file['format']} ({how})")
    counts = report["counts"]
    prefix = "Dry run, nothing written. Would have " if report["dry_run"] else ""
    typer.echo(
        f"{prefix}{counts['added']} added, {counts['changed']} changed, "
        f"{counts['retired']} retired, {counts['unchanged']} unchanged; "
        f"{counts['people_added']} people added, {counts['people_changed']} people "
        f"changed, {counts['service_accounts_added']} service accounts added, "
        f"{counts['service_accounts_changed']} service accounts changed."
    )
    for section in ("added", "changed", "retired"):
        entries = report[section]
        for entry in entries[:LISTED_PER_SECTION]:
            fields = f" ({', '.join(entry['fields'])})" if "fields" in entry else ""
            typer.echo(
                f"  {section}: {entry['source']} {entry['source_id']} "
                f"{entry['name']}{fields}"
            )
        if len(entries) > LISTED_PER_SECTION:
            typer.echo(f"  ... and {len(entries) - LISTED_PER_SECTION} more {section}")
    for warning in report["warnings"]:
        typer.echo(f"warning: {warning}")


@inventory_app.command("list")
def list_credentials(
    ctx: typer.Context,
    system: Annotated[
        str | None, typer.Option(help="Only credentials of this system, e.g. aws.")
    ] = None,
    status: Annotated[
        str | None,
        typer.Option(help="Only credentials with this status, e.g. active or retired."),
    ] = None,
    json_output: JsonOption = False,
) -> None:
    """List credentials with their system, holder, owner and dates."""
    from rich.table import Table
    from rich.text import Text

    from keysteward.inventory.listing import list_inventory

    with state_of(ctx).store.session() as session:
        rows = list_inventory(session, system=system, status=status)
    if json_output:
        print_json(rows)
        return
    table = Table()
    table.add_column("id", justify="right", no_wrap=True)
    table.add_column("system", no_wrap=True)
    table.add_column("name", overflow="fold")
    table.add_column("kind", no_wrap=True)
    table.add_column("status", no_wrap=True)
    table.add_column("owner", no_wrap=True)
    table.add_column("holder", no_wrap=True)
    table.add_column("last used", no_wrap=True)
    for row in rows:
        table.add_row(
            str(row["id"]),
            row["system"] or "",
            # Text, not markup, because names come from imported files.
            Text(row["name"]),
            row["kind"],
            row["status"],
            Text(row["owner"] or ""),
            Text(row["holder_person"] or row["holder_service_account"] or ""),
            (row["last_used_at"] or "")[:10],
        )
    console.print(table)
    typer.echo(f"{len(rows)} {'credential' if len(rows) == 1 else 'credentials'}")


@inventory_app.command("export")
def export(
    ctx: typer.Context,
    output_format: Annotated[
        str, typer.Option("--format", help="Output format: yaml or json.")
    ] = "yaml",
    output: Annotated[
        Path | None,
        typer.Option(
            "-o", "--output", help="File to write; standard output if left out."
        ),
    ] = None,
) -> None:
    """Write the whole inventory in keysteward's native format."""
    from keysteward.inventory.export import dump_inventory, export_inventory

    if output_format not in {"yaml", "json"}:
        raise InvalidInputError(
            f"invalid --format {output_format!r}; expected yaml or json"
        )
    with state_of(ctx).store.session() as session:
        text = dump_inventory(export_inventory(session), output_format)
    if output is None:
        sys.stdout.write(text)
        return
    output.write_text(text, encoding="utf-8")
    typer.echo(f"Wrote {output}")
