"""Vault commands as a user runs them: init, secret, rekey, backup, run."""

import base64
import json
import os
import re
import sys
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
from keysteward.identities.models import Person, ServiceAccount

runner = CliRunner()
HUBSPOT_VALUE = "pat-na1-" + "9f8e7d6c" * 4
SLACK_VALUE = "https://hooks.slack.example/services/" + "T0B1C2" * 4


def _cli(home: Path, *args: str, stdin: str | None = None, env=None):
    return runner.invoke(app, ["--home", str(home), *args], input=stdin, env=env)


@pytest.fixture
def home(tmp_path: Path) -> Path:
    path = tmp_path / "home"
    result = _cli(path, "init")
    assert result.exit_code == 0, result.output
    return path


def _grant(home: Path, account: str, *permissions: str) -> None:
    """Create a person-owned service account and a role with ``permissions``."""
    store = open_store(Settings(home=home))
    try:
        with store.session() as session:
            owner = session.scalar(
                select(Person).where(Person.email == "ops@example.com")
            )
            if owner is None:
                owner = Person(name="Ops", email="ops@example.com")
                session.add(owner)
            sa = ServiceAccount(name=account, owner=owner, purpose="sync")
            role = Role(name=f"{account}-reader")
            for text in permissions:
                system, resource, action = text.split(":")
                role.permissions.append(
                    Permission(system=system, resource=resource, action=action)
                )
            session.add_all([sa, role])
            session.flush()
            session.add(
                RoleGrant(
                    role_id=role.id,
                    principal_type="service_account",
                    principal_id=sa.id,
                )
            )
            mark_policy_changed(session)
    finally:
        store.engine.dispose()


def _read_events(home: Path) -> list[Event]:
    store = open_store(Settings(home=home))
    try:
        with store.session() as session:
            query = (
                select(Event).where(Event.action == "secret.read").order_by(Event.id)
            )
            return list(session.scalars(query))
    finally:
        store.engine.dispose()


def test_init_creates_private_key_file(home: Path) -> None:
    key_file = home / "master.key"
    assert key_file.exists()
    assert key_file.stat().st_mode & 0o777 == 0o600
    before = key_file.read_bytes()
    assert _cli(home, "init").exit_code == 0
    assert key_file.read_bytes() == before


def test_open_key_file_rejected(home: Path) -> None:
    os.chmod(home / "master.key", 0o644)
    result = _cli(home, "secret", "put", "hubspot", stdin=HUBSPOT_VALUE)
    assert result.exit_code == 3
    assert f"chmod 600 {home / 'master.key'}" in result.stderr
    assert "Traceback" not in result.output


def test_put_get_round_trip(home: Path) -> None:
    put = _cli(home, "secret", "put", "hubspot", stdin=HUBSPOT_VALUE)
    assert put.exit_code == 0, put.output
    assert HUBSPOT_VALUE not in put.output
    got = _cli(home, "secret", "get", "hubspot")
    assert got.exit_code == 0, got.output
    assert got.stdout == HUBSPOT_VALUE


def test_put_from_file(home: Path, tmp_path: Path) -> None:
    value_file = tmp_path / "value.txt"
    value_file.write_text(SLACK_VALUE)
    assert (
        _cli(home, "secret", "put", "slack", "--file", str(value_file)).exit_code == 0
    )
    assert _cli(home, "secret", "get", "slack").stdout == SLACK_VALUE


def test_versions_and_retire(home: Path) -> None:
    _cli(home, "secret", "put", "hubspot", stdin="one")
    _cli(home, "secret", "put", "hubspot", stdin="two")
    listed = json.loads(_cli(home, "secret", "versions", "hubspot", "--json").stdout)
    assert [(v["version"], v["status"]) for v in listed] == [
        (1, "previous"),
        (2, "current"),
    ]
    assert _cli(home, "secret", "get", "hubspot", "--version", "1").stdout == "one"
    assert _cli(home, "secret", "retire", "hubspot", "--version", "1").exit_code == 0
    retired = _cli(home, "secret", "get", "hubspot", "--version", "1")
    assert retired.exit_code == 4
    assert "retired" in retired.stderr


def test_list_json(home: Path) -> None:
    _cli(home, "secret", "put", "hubspot", stdin=HUBSPOT_VALUE)
    _cli(home, "secret", "put", "slack", stdin=SLACK_VALUE)
    result = _cli(home, "secret", "list", "--json")
    assert result.exit_code == 0
    rows = json.loads(result.stdout)
    assert [row["name"] for row in rows] == ["hubspot", "slack"]
    assert HUBSPOT_VALUE not in result.stdout


def test_get_unknown_secret(home: Path) -> None:
    result = _cli(home, "secret", "get", "nothing")
    assert result.exit_code == 4
    assert "secret 'nothing' not found" in result.stderr


def test_rekey_then_get(home: Path) -> None:
    _cli(home, "secret", "put", "hubspot", stdin=HUBSPOT_VALUE)
    result = _cli(home, "rekey", "--json")
    assert result.exit_code == 0, result.output
    summary = json.loads(result.stdout)
    assert summary["rewrapped"] == 1
    assert summary["retired_kek_ids"] == [1]
    assert _cli(home, "secret", "get", "hubspot").stdout == HUBSPOT_VALUE


def test_wrong_master_key_one_line(home: Path) -> None:
    _cli(home, "secret", "put", "hubspot", stdin=HUBSPOT_VALUE)
    other_key = base64.b64encode(os.urandom(32)).decode()
    (home / "master.key").write_text(other_key + "\n")
    result = _cli(home, "secret", "get", "hubspot")
    assert result.exit_code == 6
    assert result.stderr.startswith("error: decryption failed")
    assert len(result.stderr.strip().splitlines()) == 1


def test_backup_restore_round_trip(home: Path, tmp_path: Path) -> None:
    _cli(home, "secret", "put", "hubspot", stdin=HUBSPOT_VALUE)
    backup_file = tmp_path / "keysteward.backup"
    assert _cli(home, "backup", str(backup_file)).exit_code == 0
    new_home = tmp_path / "restored"
    new_home.mkdir(mode=0o700)
    (new_home / "master.key").write_bytes((home / "master.key").read_bytes())
    os.chmod(new_home / "master.key", 0o600)
    result = _cli(new_home, "restore", str(backup_file), "--json")
    assert result.exit_code == 0, result.output
    assert json.loads(result.stdout)["verified_versions"] == 1
    assert _cli(new_home, "secret", "get", "hubspot").stdout == HUBSPOT_VALUE


def _child_script(tmp_path: Path) -> tuple[Path, Path]:
    output = tmp_path / "child-env.json"
    script = tmp_path / "child.py"
    script.write_text(
        "import json, os, sys\n"
        "names = ['HUBSPOT_TOKEN', 'SLACK_WEBHOOK', 'HUBSPOT', 'SLACK',\n"
        "         'KEYSTEWARD_MASTER_KEY']\n"
        "seen = {name: os.environ.get(name) for name in names}\n"
        "open(sys.argv[1], 'w').write(json.dumps(seen))\n"
        "sys.exit(7)\n"
    )
    return script, output


def test_run_injects_only_allowed(home: Path, tmp_path: Path) -> None:
    _cli(home, "secret", "put", "hubspot", stdin=HUBSPOT_VALUE)
    _cli(home, "secret", "put", "slack", stdin=SLACK_VALUE)
    _grant(home, "crm-sync", "keysteward:secrets/hubspot:read")
    env_map = tmp_path / "env.yaml"
    env_map.write_text("HUBSPOT_TOKEN: hubspot\nSLACK_WEBHOOK: slack\n")
    script, output = _child_script(tmp_path)
    result = _cli(
        home,
        "run",
        "--as",
        "crm-sync",
        "--env-map",
        str(env_map),
        "--",
        sys.executable,
        str(script),
        str(output),
    )
    assert result.exit_code == 7, result.output
    seen = json.loads(output.read_text())
    assert seen["HUBSPOT_TOKEN"] == HUBSPOT_VALUE
    assert seen["SLACK_WEBHOOK"] is None
    assert "may not read secret slack" in result.stderr
    events = _read_events(home)
    assert [(e.target_id, e.outcome) for e in events] == [
        ("hubspot", "allowed"),
        ("slack", "denied"),
    ]
    assert all(e.actor == "service_account:crm-sync" for e in events)
    assert all(e.source_address.startswith("local:") for e in events)


def test_run_default_names_and_no_master_key(home: Path, tmp_path: Path) -> None:
    _cli(home, "secret", "put", "hubspot", stdin=HUBSPOT_VALUE)
    _cli(home, "secret", "put", "slack", stdin=SLACK_VALUE)
    _grant(home, "crm-sync", "keysteward:secrets/*:read")
    script, output = _child_script(tmp_path)
    environment = {"KEYSTEWARD_MASTER_KEY": "should-not-reach-the-child"}
    result = _cli(
        home,
        "run",
        "--as",
        "crm-sync",
        "--",
        sys.executable,
        str(script),
        str(output),
        env=environment,
    )
    assert result.exit_code == 7, result.output
    seen = json.loads(output.read_text())
    assert seen["HUBSPOT"] == HUBSPOT_VALUE
    assert seen["SLACK"] == SLACK_VALUE
    assert seen["KEYSTEWARD_MASTER_KEY"] is None


def test_run_bad_env_map(home: Path, tmp_path: Path) -> None:
    _grant(home, "crm-sync")
    env_map = tmp_path / "env.yaml"
    env_map.write_text("1BAD: hubspot\n")
    result = _cli(
        home, "run", "--as", "crm-sync", "--env-map", str(env_map), "--", "true"
    )
    assert result.exit_code == 2
    assert "invalid environment variable name '1BAD'" in result.stderr


def test_run_unknown_account(home: Path) -> None:
    result = _cli(home, "run", "--as", "ghost", "--", "true")
    assert result.exit_code == 4
    assert "service account 'ghost' not found" in result.stderr


def test_passphrase_provider(tmp_path: Path) -> None:
    home = tmp_path / "home"
    environment = {
        "KEYSTEWARD_KEY_PROVIDER": "passphrase",
        "KEYSTEWARD_PASSPHRASE": "correct horse battery staple",
    }
    assert _cli(home, "init", env=environment).exit_code == 0
    params = home / "master-key-params.json"
    assert params.stat().st_mode & 0o777 == 0o600
    assert not (home / "master.key").exists()
    put = _cli(home, "secret", "put", "hubspot", stdin=HUBSPOT_VALUE, env=environment)
    assert put.exit_code == 0, put.output
    got = _cli(home, "secret", "get", "hubspot", env=environment)
    assert got.stdout == HUBSPOT_VALUE
    wrong = {**environment, "KEYSTEWARD_PASSPHRASE": "wrong horse"}
    denied = _cli(home, "secret", "get", "hubspot", env=wrong)
    assert denied.exit_code == 6
    assert HUBSPOT_VALUE not in denied.output


def test_env_provider_missing_key(home: Path) -> None:
    environment = {"KEYSTEWARD_KEY_PROVIDER": "env", "KEYSTEWARD_MASTER_KEY": ""}
    result = _cli(home, "secret", "put", "hubspot", stdin="x", env=environment)
    assert result.exit_code == 3
    assert "KEYSTEWARD_MASTER_KEY is not set" in result.stderr


def test_unknown_provider_named(home: Path) -> None:
    result = _cli(home, "secret", "list", env={"KEYSTEWARD_KEY_PROVIDER": "kms"})
    # Listing reads no key, so only commands that decrypt or encrypt fail.
    assert result.exit_code == 0
    result = _cli(
        home,
        "secret",
        "put",
        "hubspot",
        stdin="x",
        env={"KEYSTEWARD_KEY_PROVIDER": "kms"},
    )
    assert result.exit_code == 3
    assert "invalid KEYSTEWARD_KEY_PROVIDER='kms'" in result.stderr


def test_serve_without_key_fails_fast(home: Path) -> None:
    (home / "master.key").unlink()
    result = _cli(home, "serve", "--port", "8699")
    assert result.exit_code == 3
    assert "master key file" in result.stderr
    assert "keysteward init" in result.stderr


def test_secret_list_whole_second_times(home: Path) -> None:
    _cli(home, "secret", "put", "hubspot", stdin=HUBSPOT_VALUE)
    listed = _cli(home, "secret", "list")
    assert listed.exit_code == 0
    times = re.findall(r"\d{4}-\d\d-\d\d[ T][0-9:.+]+", listed.stdout)
    assert len(times) == 1
    assert re.fullmatch(r"[0-9-]{10}T\d\d:\d\d:\d\d\+00:00", times[0])
