"""Commands reject departed people, disabled accounts and unknown principals."""

import getpass
import json
import sys
from datetime import date
from pathlib import Path

import pytest
from sqlalchemy import select
from typer.testing import CliRunner

from keysteward.authz.models import Permission, Role, RoleGrant
from keysteward.authz.services import mark_policy_changed
from keysteward.cli import app
from keysteward.config import Settings
from keysteward.db import open_store
from keysteward.events.models import Event
from keysteward.identities.models import (
    Person,
    PersonStatus,
    ServiceAccount,
    ServiceAccountStatus,
)

runner = CliRunner()
LEAVER = "bob.former@example.com"
HUBSPOT_VALUE = "pat-na1-" + "0a1b2c3d" * 4


def _cli(home: Path, *args: str, stdin: str | None = None):
    return runner.invoke(app, ["--home", str(home), *args], input=stdin)


@pytest.fixture
def home(tmp_path: Path) -> Path:
    """A store with an active person, a departed one and a reader account."""
    path = tmp_path / "home"
    assert _cli(path, "init").exit_code == 0
    store = open_store(Settings(home=path))
    with store.session() as session:
        carol = Person(name="Carol", email="carol@example.com")
        bob = Person(
            name="Bob",
            email=LEAVER,
            status=PersonStatus.DEPARTED,
            departed_on=date(2026, 11, 30),
        )
        account = ServiceAccount(name="crm-sync", owner=carol, purpose="sync")
        role = Role(name="reader")
        role.permissions.append(
            Permission(system="keysteward", resource="secrets/*", action="read")
        )
        session.add_all([carol, bob, account, role])
        session.flush()
        session.add(
            RoleGrant(
                role_id=role.id,
                principal_type="service_account",
                principal_id=account.id,
            )
        )
        mark_policy_changed(session)
    store.engine.dispose()
    return path


def _set_account_status(home: Path, status: str) -> None:
    store = open_store(Settings(home=home))
    with store.session() as session:
        account = session.scalar(
            select(ServiceAccount).where(ServiceAccount.name == "crm-sync")
        )
        assert account is not None
        account.status = status
    store.engine.dispose()


def _events(home: Path) -> list[Event]:
    store = open_store(Settings(home=home))
    with store.session() as session:
        rows = list(session.scalars(select(Event).order_by(Event.id)))
    store.engine.dispose()
    return rows


def test_token_issue_departed_person(home: Path) -> None:
    result = _cli(home, "token", "issue", "--principal", f"person:{LEAVER}")
    assert result.exit_code == 2
    assert f"person '{LEAVER}' has departed" in result.stderr
    assert result.stdout == ""


def test_user_commands_departed_person(home: Path) -> None:
    role = _cli(home, "user", "role", LEAVER, "admin")
    assert role.exit_code == 2
    assert "has departed" in role.stderr
    password = _cli(home, "user", "set-password", LEAVER, stdin="a long passphrase\n")
    assert password.exit_code == 2
    assert "has departed" in password.stderr


def test_sa_create_departed_owner(home: Path) -> None:
    result = _cli(
        home, "sa", "create", "new-sync", "--owner", LEAVER, "--purpose", "CRM"
    )
    assert result.exit_code == 2
    assert f"person '{LEAVER}' has departed" in result.stderr


@pytest.mark.parametrize("command", ["validate", "plan", "apply"])
def test_policy_departed_person(home: Path, tmp_path: Path, command: str) -> None:
    path = tmp_path / "policy.yaml"
    path.write_text(
        "roles:\n  crm-admin:\n    permissions: ['hubspot:**:admin']\n"
        f"assignments:\n  - principal: person:{LEAVER}\n    role: crm-admin\n"
    )
    args = [command, str(path)] + (["--force"] if command == "apply" else [])
    result = _cli(home, "policy", *args)
    assert result.exit_code == 2, result.output
    assert LEAVER in result.stderr
    assert "departed" in result.stderr


@pytest.mark.parametrize("command", ["validate", "plan", "apply"])
def test_policy_unknown_principal(home: Path, tmp_path: Path, command: str) -> None:
    path = tmp_path / "policy.yaml"
    path.write_text(
        "roles:\n  crm-admin:\n    permissions: ['hubspot:**:admin']\n"
        "assignments:\n  - principal: service_account:ghost\n    role: crm-admin\n"
    )
    args = [command, str(path)] + (["--force"] if command == "apply" else [])
    result = _cli(home, "policy", *args)
    assert result.exit_code == 4, result.output
    assert "not in the store: service_account:ghost" in result.stderr


def test_run_disabled_account(home: Path, tmp_path: Path) -> None:
    _cli(home, "secret", "put", "hubspot", stdin=HUBSPOT_VALUE)
    _set_account_status(home, ServiceAccountStatus.DISABLED)
    marker = tmp_path / "started"
    script = f"open({str(marker)!r}, 'w').close()"
    result = _cli(home, "run", "--as", "crm-sync", "--", sys.executable, "-c", script)
    assert result.exit_code == 2
    assert "service account 'crm-sync' is disabled" in result.stderr
    assert not marker.exists()
    reads = [e for e in _events(home) if e.action == "secret.read"]
    assert reads == []


def test_events_one_actor_per_user(home: Path, tmp_path: Path) -> None:
    actor = f"cli:{getpass.getuser()}"
    assert _cli(home, "secret", "put", "hubspot", stdin=HUBSPOT_VALUE).exit_code == 0
    assert _cli(home, "secret", "get", "hubspot").exit_code == 0
    issued = _cli(
        home, "token", "issue", "--principal", "service_account:crm-sync", "--json"
    )
    assert issued.exit_code == 0
    policy = tmp_path / "policy.yaml"
    assert _cli(home, "policy", "export", "-o", str(policy)).exit_code == 0
    assert _cli(home, "policy", "apply", str(policy)).exit_code == 0
    listed = _cli(home, "events", "list", "--json", "--actor", actor)
    assert listed.exit_code == 0, listed.output
    actions = {row["action"] for row in json.loads(listed.stdout)}
    assert "secret.read" in actions
    assert "token.issue" in actions
    assert "authz.policy.apply" in actions
    other_actors = {e.actor for e in _events(home)} - {actor}
    assert not any(name.startswith(("cli", "operator")) for name in other_actors)
