"""``policy``, ``check`` and ``access`` from the command line, as a user runs them."""

import json
from pathlib import Path

import pytest
from typer.testing import CliRunner, Result

from keysteward.cli import app
from keysteward.config import Settings
from keysteward.db import open_store
from keysteward.identities.models import Person, ServiceAccount

runner = CliRunner()

POLICY = """\
# Sales tools.
roles:
  crm-reader:
    permissions: ["hubspot:*:read"]
  crm-sync:
    permissions: [hubspot:contacts:write]
    includes: [crm-reader]
assignments:
  - principal: service_account:svc-crm-sync
    role: crm-sync
  - principal: person:alice@example.com
    role: crm-reader
denies:
  - principal: person:alice@example.com
    permission: hubspot:salaries:read
"""


@pytest.fixture
def home(tmp_path: Path) -> Path:
    home = tmp_path / "home"
    store = open_store(Settings(home=home))
    with store.session() as session:
        session.add(ServiceAccount(name="svc-crm-sync"))
        session.add(Person(name="Alice", email="alice@example.com"))
    store.engine.dispose()
    return home


def _write(tmp_path: Path, text: str = POLICY) -> Path:
    path = tmp_path / "policy.yaml"
    path.write_text(text)
    return path


def test_validate_reports_file_line(home: Path, tmp_path: Path) -> None:
    path = _write(tmp_path, "roles:\n  a:\n    permissions: [nope]\n")
    result = runner.invoke(app, ["--home", str(home), "policy", "validate", str(path)])
    assert result.exit_code == 2
    assert f"{path}:3: invalid permission 'nope'" in result.output


def test_plan_apply_check_export(home: Path, tmp_path: Path) -> None:
    path = _write(tmp_path)
    plan = runner.invoke(app, ["--home", str(home), "policy", "plan", str(path)])
    assert plan.exit_code == 1, plan.output
    assert "+ role crm-sync" in plan.stdout
    assert "Plan: 5 to add, 0 to change, 0 to remove." in plan.stdout

    applied = runner.invoke(app, ["--home", str(home), "policy", "apply", str(path)])
    assert applied.exit_code == 0, applied.output
    assert path.read_text().startswith("# Sales tools.\nbase: ")

    again = runner.invoke(app, ["--home", str(home), "policy", "plan", str(path)])
    assert again.exit_code == 0, again.output
    assert "No changes" in again.stdout

    allowed = runner.invoke(
        app,
        [
            "--home",
            str(home),
            "check",
            "service_account:svc-crm-sync",
            "read",
            "hubspot:contacts",
            "--json",
        ],
    )
    assert allowed.exit_code == 0, allowed.output
    decision = json.loads(allowed.stdout)
    assert decision["decision"] == "allow"
    assert decision["grant"]["role_path"] == ["crm-sync", "crm-reader"]

    denied = runner.invoke(
        app,
        [
            "--home",
            str(home),
            "check",
            "person:alice@example.com",
            "hubspot:salaries:read",
        ],
    )
    assert denied.exit_code == 1
    assert "DENY" in denied.stdout
    assert "deny rule on person:alice@example.com" in denied.stdout

    exported = tmp_path / "exported.yaml"
    result = runner.invoke(
        app, ["--home", str(home), "policy", "export", "-o", str(exported)]
    )
    assert result.exit_code == 0, result.output
    replan = runner.invoke(app, ["--home", str(home), "policy", "plan", str(exported)])
    assert replan.exit_code == 0, replan.output


def test_apply_rejects_stale_file(home: Path, tmp_path: Path) -> None:
    path = _write(tmp_path)
    assert _apply(home, path).exit_code == 0
    exported = tmp_path / "mine.yaml"
    runner.invoke(app, ["--home", str(home), "policy", "export", "-o", str(exported)])
    changed = path.read_text().replace("hubspot:contacts:write", "hubspot:deals:write")
    path.write_text(changed)
    assert _apply(home, path).exit_code == 0

    stale = exported.read_text().replace(
        "  crm-reader:\n", "  crm-reader:\n    description: x\n", 1
    )
    exported.write_text(stale)
    rejected = _apply(home, exported)
    assert rejected.exit_code == 5
    assert "changed since the file's base" in rejected.output
    forced = runner.invoke(
        app, ["--home", str(home), "policy", "apply", str(exported), "--force"]
    )
    assert forced.exit_code == 0, forced.output


def _apply(home: Path, path: Path) -> Result:
    return runner.invoke(app, ["--home", str(home), "policy", "apply", str(path)])


def test_check_invalid_input_exit_two(home: Path) -> None:
    result = runner.invoke(
        app, ["--home", str(home), "check", "service_account:x ", "crm:a:read"]
    )
    assert result.exit_code == 2
    assert "whitespace" in result.output


def test_access_reports(home: Path, tmp_path: Path) -> None:
    _apply(home, _write(tmp_path))
    usage = tmp_path / "usage.csv"
    usage.write_text(
        "principal,permission,at,count\n"
        "service_account:svc-crm-sync,hubspot:contacts:read,2099-01-01T00:00:00Z,3\n"
    )
    imported = runner.invoke(
        app, ["--home", str(home), "access", "import-usage", str(usage), "--json"]
    )
    assert imported.exit_code == 0, imported.output
    assert json.loads(imported.stdout) == {"records": 1, "rows": 1}

    recommended = runner.invoke(
        app, ["--home", str(home), "access", "recommend", "--days", "30", "--json"]
    )
    assert recommended.exit_code == 0, recommended.output
    principals = json.loads(recommended.stdout)["principals"]
    alice = next(p for p in principals if p["principal"] == "person:alice@example.com")
    assert alice["unused"] == ["hubspot:*:read"]

    page = tmp_path / "map.html"
    mapped = runner.invoke(
        app,
        ["--home", str(home), "access", "map", "--format", "html", "-o", str(page)],
    )
    assert mapped.exit_code == 0, mapped.output
    assert "<svg" in page.read_text()
    markdown = runner.invoke(app, ["--home", str(home), "access", "map"])
    assert "# Access map" in markdown.stdout
    bad = runner.invoke(app, ["--home", str(home), "access", "map", "--format", "pdf"])
    assert bad.exit_code == 2
    assert "invalid --format 'pdf'" in bad.output


def test_check_unknown_principal_exit_four(home: Path, tmp_path: Path) -> None:
    _apply(home, _write(tmp_path))
    for principal in ("person:ghost@example.com", "service_account:ghost"):
        result = runner.invoke(
            app, ["--home", str(home), "check", principal, "read", "hubspot:x"]
        )
        assert result.exit_code == 4, result.output
        assert "ghost" in result.output
        assert "DENY" not in result.output


def test_check_unknown_action_exit_two(home: Path, tmp_path: Path) -> None:
    _apply(home, _write(tmp_path))
    principal = "service_account:svc-crm-sync"
    result = runner.invoke(
        app, ["--home", str(home), "check", principal, "fly", "hubspot:x"]
    )
    assert result.exit_code == 2
    assert "unknown action 'fly'" in result.output
    allowed = runner.invoke(
        app, ["--home", str(home), "check", principal, "write", "hubspot:contacts"]
    )
    assert allowed.exit_code == 0, allowed.output
