"""``keysteward events``: list, export and verify the tamper-evident event log."""

import sys
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

from keysteward.cli._context import console, error_console, print_json, state_of
from keysteward.errors import InvalidInputError

if TYPE_CHECKING:
    from sqlalchemy.orm import Session

    from keysteward.events.verify import VerifyReport

events_app = typer.Typer(
    help="List, export and verify the tamper-evident event log.",
    no_args_is_help=True,
)

# Problems printed by ``verify`` without --json; --json lists up to
# ``keysteward.events.verify.MAX_PROBLEMS``.
MAX_PROBLEMS_SHOWN = 20

JsonOption = Annotated[
    bool, typer.Option("--json", help="Print JSON instead of a table.")
]
SinceOption = Annotated[
    str | None,
    typer.Option(
        help="Only events at or after this ISO 8601 time, e.g. 2026-01-31T09:00:00Z "
        "(a time without an offset is UTC).",
        show_default=False,
    ),
]


def register(app: typer.Typer) -> None:
    app.add_typer(events_app, name="events")


def parse_since(value: str | None) -> datetime | None:
    """Parse ``--since`` as ISO 8601; raise InvalidInputError if it is not."""
    if value is None:
        return None
    from keysteward.clock import as_utc

    try:
        parsed = datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        raise InvalidInputError(
            f"invalid --since value {value!r}: expected an ISO 8601 time such as "
            "2026-01-31 or 2026-01-31T09:00:00Z"
        ) from None
    return as_utc(parsed)


@events_app.command("list")
def list_command(
    ctx: typer.Context,
    json_output: JsonOption = False,
    since: SinceOption = None,
    actor: Annotated[
        str | None, typer.Option(help="Only events by this actor (exact match).")
    ] = None,
    action: Annotated[
        str | None, typer.Option(help="Only events with this action (exact match).")
    ] = None,
    limit: Annotated[
        int, typer.Option(min=1, help="Maximum number of events, newest first.")
    ] = 50,
) -> None:
    """List the newest events, newest first."""
    from rich.table import Table

    from keysteward.events.export import event_as_dict
    from keysteward.events.services import list_events

    since_time = parse_since(since)
    store = state_of(ctx).store
    with store.session() as session:
        rows = [
            event_as_dict(recorded)
            for recorded in list_events(
                session, limit, since=since_time, actor=actor, action=action
            )
        ]
    if json_output:
        print_json(rows)
        return
    table = Table("Seq", "Time (UTC)", "Actor", "Action", "Target", "Outcome")
    for row in rows:
        target = ":".join(str(v) for v in (row["target_type"], row["target_id"]) if v)
        table.add_row(
            str(row["sequence"]),
            row["occurred_at"].replace("T", " ")[:19],
            row["actor"],
            row["action"],
            target,
            row["outcome"],
        )
    console.print(table)


@events_app.command("export")
def export_command(
    ctx: typer.Context,
    since: SinceOption = None,
    export_format: Annotated[
        str,
        typer.Option(
            "--format",
            help="jsonl (every field, chain included), cef (ArcSight CEF:0) or "
            "ocsf (OCSF API Activity JSON, one object per line).",
        ),
    ] = "jsonl",
    output: Annotated[
        Path | None,
        typer.Option("-o", "--output", help="File to write; standard output if unset."),
    ] = None,
) -> None:
    """Write events in chain order, one per line, for a SIEM or an archive."""
    from keysteward.events.export import EXPORT_FORMATS, FORMATTERS, iter_events

    if export_format not in EXPORT_FORMATS:
        raise InvalidInputError(
            f"invalid --format {export_format!r}: "
            f"use one of {', '.join(EXPORT_FORMATS)}"
        )
    formatter = FORMATTERS[export_format]
    since_time = parse_since(since)
    store = state_of(ctx).store
    handle = sys.stdout if output is None else output.open("w", encoding="utf-8")
    # A progress bar only when writing to a file, so it never mixes with
    # exported lines on standard output.
    show_progress = output is not None and sys.stderr.isatty()
    count = 0
    try:
        with store.session() as session, _export_progress(show_progress) as advance:
            for recorded in iter_events(session, since_time):
                handle.write(formatter(recorded))
                handle.write("\n")
                count += 1
                advance()
    finally:
        if output is not None:
            handle.close()
    if output is not None:
        typer.echo(f"Exported {count} events to {output} ({export_format}).", err=True)


@contextmanager
def _export_progress(enabled: bool) -> Iterator[Callable[[], None]]:
    if not enabled:
        yield lambda: None
        return
    from rich.progress import Progress

    with Progress(transient=True, console=error_console) as progress:
        task = progress.add_task("Exporting events", total=None)
        yield lambda: progress.advance(task)


@events_app.command("verify")
def verify_command(ctx: typer.Context, json_output: JsonOption = False) -> None:
    """Recompute the hash chain and check the signed checkpoints.

    Exits 0 when the log is intact and 1 when it was tampered with, naming
    the first bad event.
    """
    from keysteward.events.verify import verify_chain

    state = state_of(ctx)
    store = state.store
    show_progress = not json_output and sys.stderr.isatty()
    # One snapshot, so events appended while it runs do not look like a
    # chain head ahead of the newest event. It takes no write lock, so the
    # server goes on recording while a long log is checked.
    with store.read_snapshot() as session:
        if show_progress:
            report = _verify_with_progress(session, state.settings.home)
        else:
            report = verify_chain(session, state.settings.home)
    if json_output:
        print_json(report.as_dict())
    else:
        _print_verify_report(report)
    if not report.valid:
        raise typer.Exit(1)


def _verify_with_progress(session: "Session", home: Path) -> "VerifyReport":
    from rich.progress import Progress

    from keysteward.events.verify import count_events, verify_chain

    total = count_events(session)
    with Progress(transient=True, console=error_console) as progress:
        task = progress.add_task("Verifying events", total=total)
        return verify_chain(
            session, home, lambda done: progress.update(task, completed=done)
        )


def _print_verify_report(report: "VerifyReport") -> None:
    for warning in report.warnings:
        typer.echo(f"warning: {warning}", err=True)
    first = report.first_problem
    if first is None:
        events = "event" if report.events_checked == 1 else "events"
        checkpoints = "checkpoint" if report.checkpoints_checked == 1 else "checkpoints"
        console.print(
            f"Event log intact: {report.events_checked} {events} and "
            f"{report.checkpoints_checked} {checkpoints} verified "
            f"(last sequence {report.last_sequence}, digest {report.last_digest})."
        )
        return
    console.print(
        f"Event log TAMPERED: {len(report.problems)} problem(s) found.", markup=False
    )
    console.print(f"First bad event: {first.message}", markup=False)
    for problem in report.problems[1:MAX_PROBLEMS_SHOWN]:
        console.print(f"  - {problem.message}", markup=False)
    hidden = len(report.problems) - MAX_PROBLEMS_SHOWN
    if hidden > 0:
        console.print(f"  ... and {hidden} more (see --json)", markup=False)


@events_app.command("checkpoint")
def checkpoint_command(ctx: typer.Context, json_output: JsonOption = False) -> None:
    """Sign a checkpoint at the newest event with HOME/checkpoint.key."""
    from sqlalchemy import select

    from keysteward.events.automatic import sign_checkpoint
    from keysteward.events.chain import format_timestamp
    from keysteward.events.models import EventCheckpoint

    state = state_of(ctx)
    # Verifies every event since the newest checkpoint, even under a sealed
    # head, in a snapshot that does not hold up the server's writes.
    signed = sign_checkpoint(state.store, trust_seal=False)
    summary = None
    with state.store.read_snapshot() as session:
        checkpoint = None
        if signed is not None:
            checkpoint = session.scalars(
                select(EventCheckpoint)
                .where(
                    EventCheckpoint.sequence == signed.sequence,
                    EventCheckpoint.digest == signed.digest,
                )
                .order_by(EventCheckpoint.id.desc())
                .limit(1)
            ).first()
        if checkpoint is not None:
            summary = {
                "id": checkpoint.id,
                "sequence": checkpoint.sequence,
                "digest": checkpoint.digest,
                "created_at": format_timestamp(checkpoint.created_at),
                "public_key": checkpoint.public_key,
            }
    if json_output:
        print_json(summary)
        return
    if summary is None:
        console.print("The event log is empty; no checkpoint was written.")
        return
    console.print(
        f"Checkpoint {summary['id']} at sequence {summary['sequence']} "
        f"(digest {summary['digest']}), signed by key {summary['public_key']}."
    )
