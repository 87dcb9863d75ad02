"""What every command module shares: settings, the store, output helpers."""

import json
import sys
from dataclasses import dataclass, field
from datetime import date, datetime
from functools import cached_property
from typing import Any

import typer
from rich.console import Console
from typer.core import TyperGroup

from keysteward.config import Settings, load_settings
from keysteward.db import Store, open_store
from keysteward.errors import KeystewardError

console = Console()
error_console = Console(stderr=True)


def fail(exc: KeystewardError) -> typer.Exit:
    """Print ``exc`` as a one-line error and return the Exit to raise."""
    typer.echo(f"error: {exc}", err=True)
    return typer.Exit(exc.exit_code)


class KeystewardGroup(TyperGroup):
    """Root command group that turns KeystewardError into a one-line message."""

    def invoke(self, ctx: Any) -> Any:
        try:
            return super().invoke(ctx)
        except KeystewardError as exc:
            raise fail(exc) from None


@dataclass
class CliState:
    """Global options of one invocation; the store opens on first use."""

    overrides: dict[str, Any] = field(default_factory=dict)

    @cached_property
    def settings(self) -> Settings:
        return load_settings(**self.overrides)

    @cached_property
    def store(self) -> Store:
        from keysteward.events.checkpoints import enable_automatic_checkpoints

        opened = open_store(self.settings)
        enable_automatic_checkpoints(opened)
        if opened.created:
            # A mistyped KEYSTEWARD_HOME or URL would otherwise pass silently
            # as an empty inventory with no findings.
            typer.echo(f"note: created a new, empty store at {opened.url}", err=True)
        return opened

    def close(self) -> None:
        """Release the store's connections, if the command opened it."""
        if "store" in self.__dict__:
            self.store.engine.dispose()


def state_of(ctx: typer.Context) -> CliState:
    state = ctx.find_root().obj
    if not isinstance(state, CliState):
        raise RuntimeError(
            "keysteward CLI state is missing; was the root callback run?"
        )
    return state


def json_default(value: Any) -> Any:
    if isinstance(value, datetime | date):
        return value.isoformat()
    if isinstance(value, set | frozenset):
        return sorted(value)
    return str(value)


def print_json(data: Any) -> None:
    """Write ``data`` to stdout as indented JSON, without Rich markup."""
    sys.stdout.write(json.dumps(data, indent=2, default=json_default, sort_keys=False))
    sys.stdout.write("\n")
