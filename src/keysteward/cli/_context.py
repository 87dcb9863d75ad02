"""Settings, store access and output helpers shared by every command module."""

import json
import os
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
# Rich lays tables out 80 columns wide when output is not a terminal, which
# breaks ids, emails and dates mid-word in piped or logged output. A width set
# in COLUMNS still wins.
PIPED_WIDTH = 200


def widen_when_piped(target: Console) -> None:
    """Give ``target`` PIPED_WIDTH columns unless it writes to a terminal."""
    if not target.is_terminal and "COLUMNS" not in os.environ:
        target.width = PIPED_WIDTH


def fail(exc: KeystewardError) -> typer.Exit:
    """Print ``exc`` as a one-line error and return the Exit to raise."""
    typer.echo(f"error: {exc}", err=True)
    return typer.Exit(exc.exit_code)


class KeystewardGroup(TyperGroup):
    """Root command group that turns KeystewardError into a one-line message."""

    def invoke(self, ctx: Any) -> Any:
        widen_when_piped(console)
        widen_when_piped(error_console)
        try:
            return super().invoke(ctx)
        except KeystewardError as exc:
            raise fail(exc) from None
        except BrokenPipeError:
            # The reader closed the pipe, as `| head -1` does, which is not an
            # error. Output still buffered goes to /dev/null, so the flush at
            # exit cannot fail again.
            devnull = os.open(os.devnull, os.O_WRONLY)
            os.dup2(devnull, sys.stdout.fileno())
            raise typer.Exit(0) from None


@dataclass
class CliState:
    """Global options of one invocation; the store opens on first use."""

    overrides: dict[str, Any] = field(default_factory=dict)
    # Set by servers before the store opens, so no request signs a checkpoint.
    background_checkpoints: bool = False

    @cached_property
    def settings(self) -> Settings:
        return load_settings(**self.overrides)

    @cached_property
    def store(self) -> Store:
        from keysteward.events.automatic import enable_automatic_checkpoints

        opened = open_store(self.settings)
        enable_automatic_checkpoints(opened, background=self.background_checkpoints)
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
