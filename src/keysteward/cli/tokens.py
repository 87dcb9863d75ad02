"""Token and service-account commands: ``token ...`` and ``sa ...``."""

import re
from datetime import timedelta
from typing import Annotated

import typer

from keysteward.cli._context import console, error_console, print_json, state_of
from keysteward.cli.vault import operator_actor
from keysteward.clock import format_timestamp
from keysteward.errors import InvalidInputError

JsonOption = Annotated[
    bool, typer.Option("--json", help="Print JSON instead of a table.")
]

token_app = typer.Typer(help="Issue, list and revoke API tokens.", no_args_is_help=True)
sa_app = typer.Typer(
    help="Create, list and disable service accounts.", no_args_is_help=True
)

DURATION = re.compile(r"^(\d+)([mhdw])$")
DURATION_UNITS = {"m": "minutes", "h": "hours", "d": "days", "w": "weeks"}


def register(app: typer.Typer) -> None:
    app.add_typer(token_app, name="token")
    app.add_typer(sa_app, name="sa")


def parse_duration(text: str) -> timedelta:
    """Parse ``30d``, ``12h``, ``90m`` or ``2w`` into a timedelta."""
    match = DURATION.match(text.strip())
    if not match or int(match.group(1)) == 0:
        raise InvalidInputError(
            f"invalid duration {text!r}; write a positive number and a unit: "
            "90m, 12h, 30d or 2w"
        )
    return timedelta(**{DURATION_UNITS[match.group(2)]: int(match.group(1))})


@token_app.command("issue")
def token_issue(
    ctx: typer.Context,
    principal: Annotated[
        str,
        typer.Option(help="service_account:NAME or person:EMAIL the token acts as."),
    ],
    expires_in: Annotated[
        str | None,
        typer.Option(help="Lifetime such as 30d or 12h [default: 90d]."),
    ] = None,
    no_expiry: Annotated[
        bool, typer.Option("--no-expiry", help="Issue a token that never expires.")
    ] = False,
    role: Annotated[
        list[str] | None,
        typer.Option("--role", help="Limit the token to this role; repeatable."),
    ] = None,
    description: Annotated[
        str | None, typer.Option(help="What the token is for.")
    ] = None,
    json_output: JsonOption = False,
) -> None:
    """Issue an API token and print it once; only its digest is stored."""
    from keysteward.tokens.principals import find_principal
    from keysteward.tokens.services import issue_api_token

    lifetime = parse_duration(expires_in) if expires_in is not None else None
    with state_of(ctx).store.session() as session:
        issued = issue_api_token(
            session,
            find_principal(session, principal, active_only=True),
            actor=operator_actor(),
            lifetime=lifetime,
            no_expiry=no_expiry,
            roles=role,
            description=description,
        )
        token_id, expires_at = issued.record.id, issued.record.expires_at
    if json_output:
        print_json({"id": token_id, "token": issued.token, "expires_at": expires_at})
        return
    typer.echo(issued.token)
    until = format_timestamp(expires_at, empty="never")
    error_console.print(
        f"Token {token_id} for {principal}, expires {until}. It is shown only once."
    )


@token_app.command("list")
def token_list(ctx: typer.Context, json_output: JsonOption = False) -> None:
    """List API tokens (ids, owners and dates; never the tokens)."""
    from rich.table import Table

    from keysteward.tokens.prefix import API_TOKEN_PREFIX
    from keysteward.tokens.principals import principal_names
    from keysteward.tokens.services import list_api_tokens

    with state_of(ctx).store.session() as session:
        names = principal_names(session)
        rows = [
            {
                "id": record.id,
                "hint": f"{API_TOKEN_PREFIX}{record.hint}...",
                "principal": names.get(
                    (record.principal_type, record.principal_id),
                    f"{record.principal_type}:{record.principal_id} (deleted)",
                ),
                "roles": record.roles,
                "description": record.description,
                "created_at": record.created_at,
                "expires_at": record.expires_at,
                "last_used_at": record.last_used_at,
                "revoked_at": record.revoked_at,
            }
            for record in list_api_tokens(session)
        ]
    if json_output:
        print_json(rows)
        return
    table = Table(
        "id", "token", "principal", "roles", "expires", "last used", "revoked"
    )
    for row in rows:
        table.add_row(
            str(row["id"]),
            str(row["hint"]),
            str(row["principal"]),
            ", ".join(row["roles"]) or "all",  # type: ignore[arg-type]
            format_timestamp(row["expires_at"], empty="never"),
            format_timestamp(row["last_used_at"]),
            format_timestamp(row["revoked_at"]),
        )
    console.print(table)


@token_app.command("revoke")
def token_revoke(
    ctx: typer.Context, token_id: Annotated[int, typer.Argument()]
) -> None:
    """Revoke an API token by id; it is rejected from then on."""
    from keysteward.tokens.services import revoke_api_token

    with state_of(ctx).store.session() as session:
        revoke_api_token(session, token_id, actor=operator_actor())
    error_console.print(f"Revoked token {token_id}.")


@sa_app.command("create")
def sa_create(
    ctx: typer.Context,
    name: str,
    owner: Annotated[str, typer.Option(help="Email of the person who owns it.")],
    purpose: Annotated[str, typer.Option(help="What the automation does.")],
) -> None:
    """Create a service account owned by a person."""
    from keysteward.tokens.accounts import create_service_account

    with state_of(ctx).store.session() as session:
        create_service_account(
            session, name, owner_email=owner, purpose=purpose, actor=operator_actor()
        )
    error_console.print(f"Created service account {name}.")


@sa_app.command("list")
def sa_list(ctx: typer.Context, json_output: JsonOption = False) -> None:
    """List service accounts with their owner and status."""
    from rich.table import Table

    from keysteward.tokens.accounts import list_service_accounts

    with state_of(ctx).store.session() as session:
        rows = list_service_accounts(session)
    if json_output:
        print_json(rows)
        return
    table = Table("name", "owner", "status", "purpose")
    for row in rows:
        table.add_row(
            str(row["name"]), str(row["owner"]), str(row["status"]), str(row["purpose"])
        )
    console.print(table)


@sa_app.command("disable")
def sa_disable(ctx: typer.Context, name: str) -> None:
    """Disable a service account; its tokens stop working at once."""
    from keysteward.tokens.accounts import disable_service_account

    with state_of(ctx).store.session() as session:
        disable_service_account(session, name, actor=operator_actor())
    error_console.print(f"Disabled service account {name}.")
