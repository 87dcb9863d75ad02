"""Rotation commands as an operator runs them."""

import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

from common.rotation_setup import add_api_token_secret, add_rotatable_secret
from keysteward.cli import app
from keysteward.config import Settings
from keysteward.credentials.models import CredentialKind
from keysteward.db import Store, open_store
from keysteward.vault.keys import keyring_for_home

runner = CliRunner()


def _cli(home: Path, *args: str):
    return runner.invoke(app, ["--home", str(home), *args])


@pytest.fixture
def home(tmp_path: Path) -> Path:
    path = tmp_path / "home"
    result = _cli(path, "init")
    assert result.exit_code == 0, result.output
    return path


@pytest.fixture
def home_store(home: Path):
    opened = open_store(Settings(home=home))
    yield opened
    opened.engine.dispose()


def _seed(home: Path, store: Store) -> None:
    keyring = keyring_for_home(home)
    add_api_token_secret(store, keyring, "bot-token", grace_hours=1)
    add_rotatable_secret(
        store, keyring, "openai", b"sk-" + b"m" * 20, {"rotator": "manual"}
    )
    add_rotatable_secret(
        store,
        keyring,
        "alice-sso",
        b"pw-" + b"a" * 12,
        {"rotator": "manual"},
        kind=CredentialKind.PASSWORD,
        held_by_person=True,
    )


def test_dry_run_changes_nothing(home: Path, home_store: Store) -> None:
    _seed(home, home_store)

    result = _cli(home, "rotate", "bot-token", "openai", "--dry-run", "--json")

    assert result.exit_code == 0, result.output
    plan = json.loads(result.stdout)
    assert [(item["secret"], item["rotator"]) for item in plan] == [
        ("bot-token", "api_token"),
        ("openai", "manual"),
    ]
    listed = _cli(home, "rotation", "list", "--json")
    assert json.loads(listed.stdout) == []


def test_rotate_then_list_and_tasks(home: Path, home_store: Store) -> None:
    _seed(home, home_store)

    result = _cli(home, "rotate", "bot-token", "openai", "--json")

    assert result.exit_code == 0, result.output
    states = {row["secret"]: row["state"] for row in json.loads(result.stdout)}
    assert states == {"bot-token": "grace", "openai": "awaiting_value"}
    listed = json.loads(_cli(home, "rotation", "list", "--json").stdout)
    assert {row["secret"] for row in listed} == {"bot-token", "openai"}
    tasks = json.loads(_cli(home, "rotation", "tasks", "--json").stdout)
    assert [task["secret"] for task in tasks] == ["openai"]
    assert "keysteward secret put openai" in tasks[0]["instructions"]


def test_person_password_rejected(home: Path, home_store: Store) -> None:
    _seed(home, home_store)

    result = _cli(home, "rotate", "alice-sso")

    assert result.exit_code == 2
    assert "person's password" in result.output
    assert json.loads(_cli(home, "rotation", "list", "--json").stdout) == []


def test_bad_target_rotates_nothing(home: Path, home_store: Store) -> None:
    _seed(home, home_store)

    result = _cli(home, "rotate", "bot-token", "alice-sso")

    assert result.exit_code == 2
    assert json.loads(_cli(home, "rotation", "list", "--json").stdout) == []


def test_due_and_names_exclusive(home: Path) -> None:
    result = _cli(home, "rotate", "--due", "bot-token")

    assert result.exit_code == 2
    assert "either --due or" in result.output


def test_resume_with_nothing_open(home: Path) -> None:
    result = _cli(home, "rotation", "resume", "--json")

    assert result.exit_code == 0, result.output
    assert json.loads(result.stdout) == []


def test_scheduler_once_runs_a_pass(home: Path, home_store: Store) -> None:
    _seed(home, home_store)

    result = _cli(home, "rotation", "scheduler", "--once")

    assert result.exit_code == 0, result.output
    assert "Rotation scheduler started" in result.output
