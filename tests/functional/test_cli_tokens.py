"""Token and service-account commands as a user runs them."""

import json
import re
from pathlib import Path

import pytest
from typer.testing import CliRunner

from keysteward.cli import app
from keysteward.config import Settings
from keysteward.db import open_store
from keysteward.identities.models import Person
from keysteward.tokens.errors import AuthenticationError
from keysteward.tokens.prefix import has_valid_checksum
from keysteward.tokens.services import authenticate_api_token

runner = CliRunner()


def _cli(home: Path, *args: str):
    return runner.invoke(app, ["--home", str(home), *args])


@pytest.fixture
def home(tmp_path: Path) -> Path:
    path = tmp_path / "home"
    assert _cli(path, "init").exit_code == 0
    store = open_store(Settings(home=path))
    with store.session() as session:
        session.add(Person(name="Ops", email="ops@example.com"))
    store.engine.dispose()
    return path


def _authenticates(home: Path, token: str) -> bool:
    store = open_store(Settings(home=home))
    try:
        with store.session() as session:
            authenticate_api_token(session, token)
        return True
    except AuthenticationError:
        return False
    finally:
        store.engine.dispose()


def test_sa_create_list_disable(home: Path) -> None:
    created = _cli(
        home,
        "sa",
        "create",
        "crm-sync",
        "--owner",
        "ops@example.com",
        "--purpose",
        "CRM",
    )
    assert created.exit_code == 0, created.output
    listed = json.loads(_cli(home, "sa", "list", "--json").stdout)
    assert [(a["name"], a["owner"], a["status"]) for a in listed] == [
        ("crm-sync", "ops@example.com", "active")
    ]
    assert _cli(home, "sa", "disable", "crm-sync").exit_code == 0
    listed = json.loads(_cli(home, "sa", "list", "--json").stdout)
    assert listed[0]["status"] == "disabled"


def test_sa_create_unknown_owner(home: Path) -> None:
    result = _cli(
        home,
        "sa",
        "create",
        "crm-sync",
        "--owner",
        "nobody@example.com",
        "--purpose",
        "x",
    )
    assert result.exit_code == 4
    assert "person 'nobody@example.com' not found" in result.stderr


def test_token_issue_list_revoke(home: Path) -> None:
    _cli(
        home, "sa", "create", "crm-sync", "--owner", "ops@example.com", "--purpose", "x"
    )
    issued = _cli(
        home,
        "token",
        "issue",
        "--principal",
        "service_account:crm-sync",
        "--expires-in",
        "30d",
    )
    assert issued.exit_code == 0, issued.output
    token = issued.stdout.strip()
    assert has_valid_checksum(token)
    assert "shown only once" in issued.stderr
    assert _authenticates(home, token)

    listing = _cli(home, "token", "list", "--json")
    rows = json.loads(listing.stdout)
    assert len(rows) == 1
    assert token not in listing.stdout
    assert rows[0]["principal"] == "service_account:crm-sync"
    assert rows[0]["revoked_at"] is None

    assert _cli(home, "token", "revoke", str(rows[0]["id"])).exit_code == 0
    assert not _authenticates(home, token)
    rows = json.loads(_cli(home, "token", "list", "--json").stdout)
    assert rows[0]["revoked_at"] is not None


def test_token_disabled_account_rejected(home: Path) -> None:
    _cli(
        home, "sa", "create", "crm-sync", "--owner", "ops@example.com", "--purpose", "x"
    )
    token = _cli(
        home, "token", "issue", "--principal", "service_account:crm-sync"
    ).stdout.strip()
    _cli(home, "sa", "disable", "crm-sync")
    assert not _authenticates(home, token)


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--principal", "robot:x"], "invalid principal 'robot:x'"),
        (["--principal", "service_account:ghost"], "service account 'ghost' not found"),
        (
            ["--principal", "person:ops@example.com", "--expires-in", "3 days"],
            "invalid duration '3 days'",
        ),
        (
            ["--principal", "person:ops@example.com", "--role", "admin"],
            "does not hold role(s) admin",
        ),
    ],
)
def test_token_issue_bad_input(home: Path, args: list[str], message: str) -> None:
    result = _cli(home, "token", "issue", *args)
    assert result.exit_code in (2, 4)
    assert message in result.stderr
    assert "ks_api_" not in result.stdout


def test_token_for_person_no_expiry(home: Path) -> None:
    result = _cli(
        home,
        "token",
        "issue",
        "--principal",
        "person:ops@example.com",
        "--no-expiry",
        "--json",
    )
    assert result.exit_code == 0, result.output
    body = json.loads(result.stdout)
    assert body["expires_at"] is None
    assert _authenticates(home, body["token"])


def test_revoke_unknown_token(home: Path) -> None:
    result = _cli(home, "token", "revoke", "99")
    assert result.exit_code == 4
    assert "API token 99 not found" in result.stderr


def test_token_list_whole_second_times(home: Path) -> None:
    principal = "--principal=person:ops@example.com"
    assert _cli(home, "token", "issue", principal, "--expires-in", "30d").exit_code == 0
    listed = _cli(home, "token", "list")
    assert listed.exit_code == 0
    times = re.findall(r"\d{4}-\d\d-\d\dT[0-9:.+]+", listed.stdout)
    assert times
    assert all(re.fullmatch(r"[0-9-]{10}T\d\d:\d\d:\d\d\+00:00", t) for t in times)


def test_token_issue_huge_lifetime_rejected(home: Path) -> None:
    principal = "--principal=person:ops@example.com"
    result = _cli(home, "token", "issue", principal, "--expires-in", "99999d")
    assert result.exit_code == 2
    assert "--no-expiry" in result.output
    assert "ks_" not in result.stdout
