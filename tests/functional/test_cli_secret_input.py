"""Where ``secret put`` reads a value from: stdin, a file or ``--file -``,
never the command line."""

from pathlib import Path

import pytest
from typer.testing import CliRunner

from keysteward.cli import app

runner = CliRunner()
VALUE = "pat-na1-" + "0a9b8c7d" * 4


def _cli(home: Path, *args: str, stdin: str | None = None):
    return runner.invoke(app, ["--home", str(home), *args], input=stdin)


@pytest.fixture
def home(tmp_path: Path) -> Path:
    path = tmp_path / "home"
    assert _cli(path, "init").exit_code == 0
    return path


def test_put_rejects_value_argument(home: Path) -> None:
    result = _cli(home, "secret", "put", "hubspot", VALUE)
    assert result.exit_code == 2
    assert VALUE not in result.output
    assert "never from the command line" in result.output
    assert _cli(home, "secret", "get", "hubspot").exit_code == 4


def test_put_rejects_value_before_option(home: Path) -> None:
    result = _cli(home, "secret", "put", "hubspot", VALUE, "--system", "hubspot")
    assert result.exit_code == 2
    assert VALUE not in result.output


def test_put_file_dash_reads_stdin(home: Path) -> None:
    stored = _cli(home, "secret", "put", "hubspot", "--file", "-", stdin=VALUE)
    assert stored.exit_code == 0, stored.output
    read = _cli(home, "secret", "get", "hubspot")
    assert read.stdout == VALUE
