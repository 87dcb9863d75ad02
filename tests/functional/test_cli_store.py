"""``init`` and ``status`` from the command line, as a user runs them."""

import json
from pathlib import Path

from typer.testing import CliRunner

from keysteward.cli import app

runner = CliRunner()


def test_status_json_is_valid(tmp_path: Path) -> None:
    home = tmp_path / "home"
    result = runner.invoke(app, ["--home", str(home), "status", "--json"])
    assert result.exit_code == 0, result.output
    summary = json.loads(result.stdout)
    assert summary["backend"] == "sqlite"
    assert summary["schema_up_to_date"] is True
    assert summary["tables"]["credentials"] == 0
    assert (home / "keysteward.db").exists()


def test_init_creates_store(tmp_path: Path) -> None:
    home = tmp_path / "fresh"
    result = runner.invoke(app, ["--home", str(home), "init"])
    assert result.exit_code == 0, result.output
    assert (home / "keysteward.db").exists()


def test_status_on_postgres(postgres_url: str, tmp_path: Path) -> None:
    result = runner.invoke(
        app,
        ["--home", str(tmp_path), "--database-url", postgres_url, "status", "--json"],
    )
    assert result.exit_code == 0, result.output
    assert json.loads(result.stdout)["backend"] == "postgresql"


def test_bad_database_url_one_line(tmp_path: Path) -> None:
    result = runner.invoke(
        app,
        ["--home", str(tmp_path), "status"],
        env={"KEYSTEWARD_DATABASE_URL": "postgresql+psycopg://nobody@127.0.0.1:1/none"},
    )
    assert result.exit_code == 3
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1
    assert lines[0].startswith("error: cannot connect")
    assert "KEYSTEWARD_DATABASE_URL" in lines[0]
    assert "Traceback" not in result.output


def test_unsupported_backend_named(tmp_path: Path) -> None:
    result = runner.invoke(
        app,
        ["--home", str(tmp_path), "status"],
        env={"KEYSTEWARD_DATABASE_URL": "oracle://x@y/z"},
    )
    assert result.exit_code == 3
    assert "KEYSTEWARD_DATABASE_URL" in result.stderr


def test_new_store_announced_once(tmp_path: Path) -> None:
    home = tmp_path / "typo"
    first = runner.invoke(app, ["--home", str(home), "status", "--json"])
    second = runner.invoke(app, ["--home", str(home), "status", "--json"])
    assert first.exit_code == 0, first.output
    assert "created a new, empty store" in first.stderr
    assert "created a new, empty store" not in second.stderr
    assert json.loads(first.stdout)["backend"] == "sqlite"
