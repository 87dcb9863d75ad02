"""Offboarding commands: ``offboard PERSON`` and ``people list``."""

from datetime import date
from pathlib import Path
from typing import Annotated, Any

import typer

from keysteward.cli._context import console, print_json, state_of
from keysteward.cli.vault import operator_actor
from keysteward.errors import InvalidInputError

people_app = typer.Typer(help="List the people in the store.", no_args_is_help=True)
request_app = typer.Typer(
    help="List and finish rotations that a person has to do by hand.",
    no_args_is_help=True,
)


def register(app: typer.Typer) -> None:
    app.command("offboard")(offboard)
    app.add_typer(people_app, name="people")
    app.add_typer(request_app, name="rotation-request")


def parse_day(text: str, option: str) -> date:
    """Parse an ISO date such as 2026-03-31 given to ``option``."""
    try:
        return date.fromisoformat(text)
    except ValueError:
        raise InvalidInputError(
            f"invalid {option} {text!r}; write the date as YYYY-MM-DD"
        ) from None


def offboard(
    ctx: typer.Context,
    person: Annotated[str, typer.Argument(help="Email of the person who is leaving.")],
    successor: Annotated[
        str | None,
        typer.Option(help="Email of the person who takes over what they owned."),
    ] = None,
    as_of: Annotated[
        str | None,
        typer.Option(help="Departure date as YYYY-MM-DD [default: today]."),
    ] = None,
    json_output: Annotated[
        bool, typer.Option("--json", help="Print the report as JSON.")
    ] = False,
    html: Annotated[
        Path | None, typer.Option(help="Write the report as one HTML file here.")
    ] = None,
    dry_run: Annotated[
        bool,
        typer.Option("--dry-run", help="Report what would change; change nothing."),
    ] = False,
) -> None:
    """Offboard a person: revoke, hand over and queue rotations in one transaction."""
    from keysteward.offboarding.reports import print_report, write_html
    from keysteward.offboarding.services import offboard_person

    if json_output and html is not None:
        raise InvalidInputError("--json and --html were both given; choose one")
    departed_on = parse_day(as_of, "--as-of") if as_of is not None else None
    store = state_of(ctx).store
    session = store.session_factory()
    transaction = session.begin()
    try:
        report = offboard_person(
            session,
            person,
            actor=operator_actor(),
            successor_email=successor,
            as_of=departed_on,
        )
        report.dry_run = dry_run
        if dry_run:
            transaction.rollback()
        else:
            transaction.commit()
    except BaseException:
        transaction.rollback()
        raise
    finally:
        session.close()
    if json_output:
        print_json(report.to_dict())
    elif html is not None:
        write_html(report, html)
        typer.echo(f"wrote the offboarding report to {html}")
    else:
        print_report(report, console)


@people_app.command("list")
def list_people(
    ctx: typer.Context,
    status: Annotated[
        str | None,
        typer.Option(help="Only people with this status: active or departed."),
    ] = None,
    json_output: Annotated[
        bool, typer.Option("--json", help="Print JSON instead of a table.")
    ] = False,
) -> None:
    """List people with their status and departure date."""
    from rich.table import Table
    from sqlalchemy import select

    from keysteward.identities.models import Person, PersonStatus

    allowed = {str(s) for s in PersonStatus}
    if status is not None and status not in allowed:
        raise InvalidInputError(
            f"invalid --status {status!r}; expected one of {', '.join(sorted(allowed))}"
        )
    query = select(Person).order_by(Person.email)
    if status is not None:
        query = query.where(Person.status == status)
    with state_of(ctx).store.session() as session:
        rows: list[dict[str, Any]] = [
            {
                "email": person.email,
                "name": person.name,
                "status": person.status,
                "departed_on": person.departed_on,
            }
            for person in session.scalars(query)
        ]
    if json_output:
        print_json(rows)
        return
    table = Table("email", "name", "status", "departed on")
    for row in rows:
        departed = row["departed_on"].isoformat() if row["departed_on"] else ""
        table.add_row(row["email"], row["name"], row["status"], departed)
    console.print(table)
    typer.echo(f"{len(rows)} people")


@request_app.command("list")
def list_requests(
    ctx: typer.Context,
    json_output: Annotated[
        bool, typer.Option("--json", help="Print JSON instead of a table.")
    ] = False,
) -> None:
    """List queued rotation requests with their credential and reason."""
    from rich.table import Table

    from keysteward.credentials.models import Credential
    from keysteward.offboarding.rotation import queued_rotations

    with state_of(ctx).store.session() as session:
        rows: list[dict[str, Any]] = []
        for request in queued_rotations(session):
            credential = session.get(Credential, request.credential_id)
            rows.append(
                {
                    "id": request.id,
                    "credential_id": request.credential_id,
                    "credential": credential.name if credential else None,
                    "reason": request.reason,
                    "origin": request.origin,
                    "requested_by": request.requested_by,
                    "created_at": request.created_at,
                }
            )
    if json_output:
        print_json(rows)
        return
    table = Table("id", "credential", "reason", "origin", "requested")
    for row in rows:
        table.add_row(
            str(row["id"]),
            f"{row['credential']} ({row['credential_id']})",
            row["reason"],
            row["origin"],
            row["created_at"].isoformat(timespec="minutes"),
        )
    console.print(table)
    typer.echo(f"{len(rows)} queued rotation request(s)")


@request_app.command("done")
def finish(
    ctx: typer.Context,
    request_id: Annotated[int, typer.Argument(metavar="ID", help="Request id.")],
    cancel: Annotated[
        bool, typer.Option("--cancel", help="Mark it cancelled instead of done.")
    ] = False,
) -> None:
    """Mark a rotation request done (or cancelled) after the work is finished."""
    from keysteward.offboarding.models import RotationRequestStatus
    from keysteward.offboarding.rotation import finish_request

    status = RotationRequestStatus.CANCELLED if cancel else RotationRequestStatus.DONE
    with state_of(ctx).store.session() as session:
        finish_request(session, request_id, status=status, actor=operator_actor())
    typer.echo(f"rotation request {request_id} marked {status}")
