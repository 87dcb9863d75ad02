"""``keysteward events`` from the command line, as a user runs them."""

import json
import sqlite3
from pathlib import Path

from typer.testing import CliRunner, Result

from keysteward.cli import app
from keysteward.config import Settings
from keysteward.db import open_store
from keysteward.events.services import record_event

runner = CliRunner()


def _home_with_events(tmp_path: Path, count: int = 3) -> Path:
    home = tmp_path / "home"
    store = open_store(Settings(home=home))
    try:
        for number in range(count):
            with store.session() as session:
                record_event(
                    session,
                    actor="cli:alice" if number % 2 == 0 else "cli:bob",
                    action="credential.create",
                    target_type="credential",
                    target_id=number,
                )
    finally:
        store.engine.dispose()
    return home


def _run(home: Path, *args: str) -> Result:
    return runner.invoke(app, ["--home", str(home), "events", *args])


def test_verify_intact_exits_zero(tmp_path: Path) -> None:
    home = _home_with_events(tmp_path)
    result = _run(home, "verify")
    assert result.exit_code == 0, result.output
    assert "Event log intact: 3 events" in result.stdout


def test_verify_tampered_exits_one(tmp_path: Path) -> None:
    home = _home_with_events(tmp_path)
    with sqlite3.connect(home / "keysteward.db") as connection:
        connection.execute("DROP TRIGGER events_no_update")
        connection.execute("UPDATE events SET actor = 'mallory' WHERE sequence = 2")
    result = _run(home, "verify")
    assert result.exit_code == 1
    assert "TAMPERED" in result.stdout
    assert "event 2 (id 2) was changed" in result.stdout
    json_result = _run(home, "verify", "--json")
    assert json_result.exit_code == 1
    report = json.loads(json_result.stdout)
    assert report["valid"] is False
    assert report["first_problem"]["sequence"] == 2
    assert report["first_problem"]["kind"] == "changed"


def test_list_json_filters(tmp_path: Path) -> None:
    home = _home_with_events(tmp_path, count=4)
    result = _run(home, "list", "--json", "--actor", "cli:bob")
    assert result.exit_code == 0, result.output
    rows = json.loads(result.stdout)
    assert [row["sequence"] for row in rows] == [4, 2]
    limited = json.loads(_run(home, "list", "--json", "--limit", "1").stdout)
    assert [row["sequence"] for row in limited] == [4]
    later = _run(home, "list", "--json", "--since", "2999-01-01T00:00:00Z")
    assert json.loads(later.stdout) == []


def test_list_table(tmp_path: Path) -> None:
    home = _home_with_events(tmp_path, count=1)
    result = _run(home, "list")
    assert result.exit_code == 0, result.output
    assert "cli:alice" in result.stdout


def test_list_invalid_since(tmp_path: Path) -> None:
    home = _home_with_events(tmp_path, count=1)
    result = _run(home, "list", "--since", "yesterday")
    assert result.exit_code == 2
    assert "invalid --since value 'yesterday'" in result.output


def test_export_formats_to_file(tmp_path: Path) -> None:
    home = _home_with_events(tmp_path)
    for export_format in ("jsonl", "cef", "ocsf"):
        target = tmp_path / f"events.{export_format}"
        result = _run(home, "export", "--format", export_format, "-o", str(target))
        assert result.exit_code == 0, result.output
        lines = target.read_text().splitlines()
        assert len(lines) == 3, export_format
    first = json.loads((tmp_path / "events.jsonl").read_text().splitlines()[0])
    assert first["sequence"] == 1
    assert (tmp_path / "events.cef").read_text().startswith("CEF:0|keysteward|")


def test_export_unknown_format(tmp_path: Path) -> None:
    home = _home_with_events(tmp_path, count=1)
    result = _run(home, "export", "--format", "xml")
    assert result.exit_code == 2
    assert "invalid --format 'xml'" in result.output


def test_checkpoint_then_verify(tmp_path: Path) -> None:
    home = _home_with_events(tmp_path)
    result = _run(home, "checkpoint", "--json")
    assert result.exit_code == 0, result.output
    summary = json.loads(result.stdout)
    assert summary["sequence"] == 3
    verified = json.loads(_run(home, "verify", "--json").stdout)
    assert verified["valid"] is True
    assert verified["checkpoints_checked"] == 1


def test_checkpoint_seals_and_records(tmp_path: Path) -> None:
    home = _home_with_events(tmp_path)
    assert _run(home, "checkpoint").exit_code == 0

    recorded = json.loads((home / "checkpoint.last").read_text())
    assert recorded["sequence"] == 3
    with sqlite3.connect(home / "keysteward.db") as connection:
        seal = connection.execute("SELECT seal FROM event_chain_head").fetchone()[0]
    assert seal is not None
    assert len(seal) == 64


def test_checkpoint_rejects_open_key(tmp_path: Path) -> None:
    home = _home_with_events(tmp_path)
    assert _run(home, "checkpoint").exit_code == 0
    (home / "checkpoint.key").chmod(0o644)
    result = _run(home, "checkpoint")
    assert result.exit_code == 3
    assert "chmod 600" in result.output
