"""The ``keysteward`` command.

Each module in this package that does not start with an underscore defines
``register(app)``, which adds that concept's commands to the root app. The
modules are found at start-up, so a new concept needs no edit here.
"""

import importlib
import pkgutil
from pathlib import Path
from typing import Annotated

import typer

from keysteward import __version__
from keysteward.cli._context import CliState, KeystewardGroup
from keysteward.logging import configure_logging

app = typer.Typer(
    cls=KeystewardGroup,
    help="Inventory, vault and access control for the credentials of automations.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    rich_markup_mode=None,
)


def _print_version(value: bool) -> None:
    if value:
        typer.echo(f"keysteward {__version__}")
        raise typer.Exit()


@app.callback()
def root(
    ctx: typer.Context,
    home: Annotated[
        Path | None,
        typer.Option(
            help="Folder of the embedded store and key file [env: KEYSTEWARD_HOME]."
        ),
    ] = None,
    database_url: Annotated[
        str | None,
        typer.Option(
            help="SQLAlchemy URL of the store, e.g. postgresql+psycopg://user@host/db "
            "[env: KEYSTEWARD_DATABASE_URL].",
            show_default=False,
        ),
    ] = None,
    config_file: Annotated[
        Path | None,
        typer.Option(help="TOML file of settings [default: HOME/config.toml]."),
    ] = None,
    log_level: Annotated[
        str | None,
        typer.Option(help="DEBUG, INFO, WARNING or ERROR [env: KEYSTEWARD_LOG_LEVEL]."),
    ] = None,
    version: Annotated[
        bool,
        typer.Option(
            "--version",
            callback=_print_version,
            is_eager=True,
            help="Print the version.",
        ),
    ] = False,
) -> None:
    state = CliState(
        overrides={
            "home": home,
            "database_url": database_url,
            "config_file": config_file,
            "log_level": log_level,
        }
    )
    ctx.obj = state
    ctx.call_on_close(state.close)
    configure_logging(state.settings.log_level)


def _register_commands() -> None:
    for module_info in pkgutil.iter_modules(__path__):
        if module_info.name.startswith("_"):
            continue
        module = importlib.import_module(f"{__name__}.{module_info.name}")
        module.register(app)


_register_commands()


def main() -> None:
    app()
