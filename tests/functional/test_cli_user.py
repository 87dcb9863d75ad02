"""``keysteward user``: passwords from stdin, operator roles and TOTP enrolment."""

import base64
import json
import os
from pathlib import Path

import pyotp
import pytest
from sqlalchemy import select
from typer.testing import CliRunner

from keysteward.cli import app
from keysteward.config import Settings
from keysteward.db import open_store
from keysteward.events.models import Event
from keysteward.identities.models import Person
from keysteward.operators.models import OperatorLogin

runner = CliRunner()
PASSWORD = "a long enough passphrase"  # noqa: S105


@pytest.fixture
def home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setenv("KEYSTEWARD_KEY_PROVIDER", "env")
    monkeypatch.setenv(
        "KEYSTEWARD_MASTER_KEY", base64.b64encode(os.urandom(32)).decode()
    )
    path = tmp_path / "home"
    assert _cli(path, "init").exit_code == 0
    store = open_store(Settings(home=path))
    with store.session() as session:
        session.add(Person(name="Ada", email="ada@example.com"))
    store.engine.dispose()
    return path


def _cli(home: Path, *args: str, stdin: str | None = None):  # type: ignore[no-untyped-def]
    return runner.invoke(app, ["--home", str(home), *args], input=stdin)


def _login_row(home: Path) -> OperatorLogin:
    store = open_store(Settings(home=home))
    try:
        with store.session() as session:
            return session.scalars(select(OperatorLogin)).one()
    finally:
        store.engine.dispose()


def test_set_password_from_stdin(home: Path) -> None:
    result = _cli(
        home, "user", "set-password", "ada@example.com", stdin=PASSWORD + "\n"
    )
    assert result.exit_code == 0, result.output
    row = _login_row(home)
    assert row.password_hash is not None
    assert row.password_hash.startswith("$argon2id$")
    assert PASSWORD not in result.output


def test_short_password_rejected(home: Path) -> None:
    result = _cli(home, "user", "set-password", "ada@example.com", stdin="short\n")
    assert result.exit_code == 2
    assert "at least 12" in result.output


def test_unknown_person_exits_4(home: Path) -> None:
    result = _cli(home, "user", "set-password", "eve@example.com", stdin=PASSWORD)
    assert result.exit_code == 4
    assert "eve@example.com" in result.output


def test_role_set_and_removed(home: Path) -> None:
    assert _cli(home, "user", "role", "ada@example.com", "reviewer").exit_code == 0
    assert _login_row(home).role == "reviewer"
    assert _cli(home, "user", "role", "ada@example.com", "none").exit_code == 0
    assert _login_row(home).role is None


def test_invalid_role_rejected(home: Path) -> None:
    result = _cli(home, "user", "role", "ada@example.com", "root")
    assert result.exit_code == 2
    assert "read-only" in result.output


def test_totp_enable_prints_uri_once(home: Path) -> None:
    result = _cli(home, "user", "totp", "enable", "ada@example.com", "--json")
    assert result.exit_code == 0, result.output
    uri = json.loads(result.stdout)["otpauth_uri"]
    secret = pyotp.parse_uri(uri).secret
    assert len(secret) >= 16
    store = open_store(Settings(home=home))
    with store.session() as session:
        details = [event.details for event in session.scalars(select(Event))]
    store.engine.dispose()
    assert secret not in json.dumps(details)
