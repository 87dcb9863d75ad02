"""``offboard`` and ``review ...`` as a user runs them."""

import base64
import csv
import json
import os
from pathlib import Path

import pytest
from typer.testing import CliRunner

from common.offboarding_scenario import Scenario, build_scenario
from keysteward.cli import app
from keysteward.config import Settings
from keysteward.crypto.keyring import MASTER_KEY_SETTING, EnvironmentKeyProvider
from keysteward.db import open_store
from keysteward.vault.keys import KeyRing

runner = CliRunner()


def _cli(home: Path, *args: str, stdin: str | None = None):
    return runner.invoke(app, ["--home", str(home), *args], input=stdin)


@pytest.fixture
def home(tmp_path: Path) -> tuple[Path, Scenario]:
    path = tmp_path / "home"
    assert _cli(path, "init").exit_code == 0
    encoded = base64.b64encode(os.urandom(32)).decode()
    keyring = KeyRing(EnvironmentKeyProvider({MASTER_KEY_SETTING: encoded}))
    store = open_store(Settings(home=path))
    with store.session() as session:
        scenario = build_scenario(session, keyring)
    store.engine.dispose()
    return path, scenario


def _people(home: Path) -> dict[str, str]:
    listed = json.loads(_cli(home, "people", "list", "--json").stdout)
    return {row["email"]: row["status"] for row in listed}


def test_offboard_dry_run_changes_nothing(home: tuple[Path, Scenario]) -> None:
    path, scenario = home
    result = _cli(path, "offboard", scenario.leaver, "--dry-run", "--json")
    assert result.exit_code == 0, result.output
    report = json.loads(result.stdout)
    assert report["dry_run"] is True
    assert len(report["tokens_revoked"]) == 1
    assert [row["name"] for row in report["role_assignments_removed"]] == [
        "prod-secret-reader"
    ]
    assert _people(path)[scenario.leaver] == "active"


def test_offboard_prints_tables(home: tuple[Path, Scenario]) -> None:
    path, scenario = home
    result = _cli(path, "offboard", scenario.leaver, "--dry-run")
    assert result.exit_code == 0, result.output
    assert "nothing was changed" in result.output
    assert result.stdout.startswith("Would offboard Lee Leaver")
    assert "Offboarded" not in result.output
    assert "Role assignments removed (1)" in result.output
    assert "prod-secret-reader" in result.output
    assert "deploy-key" in result.output
    assert "Rotations queued (2)" in result.output
    assert "4 record(s) need an owner" in result.output


def test_offboard_json_and_html(home: tuple[Path, Scenario], tmp_path: Path) -> None:
    path, scenario = home
    html = tmp_path / "leaver.html"
    result = _cli(
        path,
        "offboard",
        scenario.leaver,
        "--successor",
        scenario.successor,
        "--as-of",
        "2026-12-04",
        "--html",
        str(html),
    )
    assert result.exit_code == 0, result.output
    page = html.read_text(encoding="utf-8")
    assert "Offboarding: Lee Leaver" in page
    assert "Role assignments removed (1)" in page
    assert "prod-secret-reader" in page
    assert "deploy-key" in page
    assert "<script" not in page
    assert _people(path)[scenario.leaver] == "departed"

    listed = json.loads(_cli(path, "rotation-request", "list", "--json").stdout)
    assert [row["credential"] for row in listed] == ["lee-pat"]
    done = _cli(path, "rotation-request", "done", str(listed[0]["id"]))
    assert done.exit_code == 0, done.output
    again = _cli(path, "rotation-request", "done", str(listed[0]["id"]))
    assert again.exit_code == 2
    assert "already done" in again.output
    assert json.loads(_cli(path, "rotation-request", "list", "--json").stdout) == []


def test_offboard_unknown_person_exit_code(home: tuple[Path, Scenario]) -> None:
    path, _ = home
    result = _cli(path, "offboard", "ghost@example.com")
    assert result.exit_code == 4
    assert "ghost@example.com" in result.output
    assert "people list" in result.output


def test_review_cli_flow(home: tuple[Path, Scenario], tmp_path: Path) -> None:
    path, scenario = home
    started = _cli(
        path,
        "review",
        "start",
        "--name",
        "q4",
        "--fallback-reviewer",
        scenario.auditor,
        "--json",
    )
    assert started.exit_code == 0, started.output
    campaign = json.loads(started.stdout)
    assert campaign["items"] == 8

    listed = _cli(path, "review", "items", "--reviewer", scenario.peer, "--json")
    assert listed.exit_code == 0, listed.output
    peer_items = json.loads(listed.stdout)
    assert {row["subject"] for row in peer_items} == {
        "openai/openai-prod",
        "openai/openai-dev",
        "github/crm-webhook",
        "service_account:ci-bot",
    }

    walked = _cli(path, "review", "walk", "--reviewer", scenario.peer, stdin="\rsq")
    assert walked.exit_code == 0, walked.output
    assert "applied" in walked.output
    assert "stopped; 1 decided" in walked.output

    dev = next(r for r in peer_items if r["subject"] == "openai/openai-dev")
    decided = _cli(
        path, "review", "decide", str(dev["id"]), "rotate", "--comment", "read by Lee"
    )
    assert decided.exit_code == 0, decided.output
    assert "proof event" in decided.output
    wrong = _cli(path, "review", "decide", str(dev["id"]), "maybe")
    assert wrong.exit_code == 2
    assert "invalid decision 'maybe'" in wrong.output

    unscoped = _cli(path, "review", "accept-recommended")
    assert unscoped.exit_code == 2
    assert "--reviewer EMAIL, or --all" in unscoped.output
    preview = _cli(path, "review", "accept-recommended", "--all", "--dry-run", "--json")
    assert preview.exit_code == 0, preview.output
    assert len(json.loads(preview.stdout)["items"]) == 6
    accepted = _cli(path, "review", "accept-recommended", "--all", "--json")
    assert accepted.exit_code == 0, accepted.output
    assert sum(json.loads(accepted.stdout).values()) == 6

    closed = _cli(path, "review", "close", "--json")
    assert closed.exit_code == 0, closed.output

    evidence = tmp_path / "evidence.csv"
    page = tmp_path / "evidence.html"
    exported = _cli(
        path,
        "review",
        "export",
        str(campaign["id"]),
        "--csv",
        str(evidence),
        "--html",
        str(page),
    )
    assert exported.exit_code == 0, exported.output
    with evidence.open(encoding="utf-8") as handle:
        rows = list(csv.DictReader(handle))
    assert len(rows) == 8
    assert all(row["proof_event_id"] for row in rows)
    assert "read by Lee" in page.read_text(encoding="utf-8")
