"""People's dashboard logins: passwords, TOTP and operator roles."""

import getpass
import sys
from typing import Annotated

import typer

from keysteward.cli._context import console, print_json, state_of
from keysteward.errors import InvalidInputError

user_app = typer.Typer(
    help="Manage people's dashboard logins and operator roles.", no_args_is_help=True
)
totp_app = typer.Typer(help="Manage TOTP second factors.", no_args_is_help=True)
user_app.add_typer(totp_app, name="totp")


def register(app: typer.Typer) -> None:
    app.add_typer(user_app, name="user")


def _read_password() -> str:
    if sys.stdin.isatty():
        first = getpass.getpass("new password (input hidden): ")
        second = getpass.getpass("repeat the password: ")
        if first != second:
            raise InvalidInputError("the two passwords differ; run the command again")
        return first
    # One line from a pipe; only the line ending is removed.
    return sys.stdin.readline().rstrip("\r\n")


@user_app.command("set-password")
def set_password_command(
    ctx: typer.Context,
    email: Annotated[str, typer.Argument(help="The person's email in the roster.")],
) -> None:
    """Set a person's dashboard password, read from a prompt or stdin (never argv).

    Setting a password ends the person's open dashboard sessions.
    """
    from keysteward.cli.vault import operator_actor
    from keysteward.operators.services import set_password
    from keysteward.transactions import run_transaction

    password = _read_password()
    store = state_of(ctx).store
    run_transaction(
        store,
        lambda session: set_password(session, email, password, actor=operator_actor()),
    )
    console.print(f"Password set for {email}.")


@user_app.command("role")
def role_command(
    ctx: typer.Context,
    email: Annotated[str, typer.Argument(help="The person's email in the roster.")],
    role: Annotated[
        str,
        typer.Argument(help="admin, reviewer, read-only, or none to remove the role."),
    ],
) -> None:
    """Give a person an operator role on the dashboard and the API."""
    from keysteward.cli.vault import operator_actor
    from keysteward.operators.services import set_role
    from keysteward.transactions import run_transaction

    chosen = None if role == "none" else role
    store = state_of(ctx).store
    run_transaction(
        store,
        lambda session: set_role(session, email, chosen, actor=operator_actor()),
    )
    console.print(f"Operator role of {email}: {chosen or 'none'}.")


@totp_app.command("enable")
def totp_enable_command(
    ctx: typer.Context,
    email: Annotated[str, typer.Argument(help="The person's email in the roster.")],
    json_output: Annotated[
        bool, typer.Option("--json", help="Print JSON instead of text.")
    ] = False,
) -> None:
    """Create a TOTP secret; print the otpauth:// URI to add to an authenticator.

    The URI contains the TOTP secret, so it is printed once and never logged.
    """
    from keysteward.cli.vault import operator_actor
    from keysteward.operators.services import enable_totp
    from keysteward.transactions import run_transaction
    from keysteward.vault.keys import keyring_for_home

    state = state_of(ctx)
    keyring = keyring_for_home(state.settings.home)
    uri = run_transaction(
        state.store,
        lambda session: enable_totp(session, keyring, email, actor=operator_actor()),
    )
    if json_output:
        print_json({"email": email, "otpauth_uri": uri})
        return
    typer.echo(f"Add this to the authenticator app of {email}:\n{uri}")
