"""Tables printed to a pipe or a log: rule ids, emails, ids and dates stay
whole on one line, and the inventory listing shows credential ids."""

import json
import re
import subprocess
import sys
from pathlib import Path

import pytest
from typer.testing import CliRunner

from keysteward.cli import app

runner = CliRunner()
EXAMPLES = Path(__file__).resolve().parents[2] / "examples"


def _run(home: Path, *args: str) -> str:
    result = runner.invoke(app, ["--home", str(home), *args])
    assert result.exit_code in (0, 1), result.output
    return result.stdout


@pytest.fixture(scope="module")
def home(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("piped") / "home"
    _run(path, "import", str(EXAMPLES))
    return path


@pytest.fixture(scope="module")
def as_of() -> str:
    planted = json.loads((EXAMPLES / "planted.json").read_text(encoding="utf-8"))
    return str(planted["now"])


def _lines_with(output: str, word: str) -> list[str]:
    return [line for line in output.splitlines() if word in line]


def test_audit_rules_whole_when_piped(home: Path, as_of: str) -> None:
    report = json.loads(_run(home, "audit", "--as-of", as_of, "--json"))
    rules = {finding["rule"] for finding in report["findings"][:25]}
    table = _run(home, "audit", "--as-of", as_of, "--limit", "25")
    for rule in rules:
        assert _lines_with(table, rule), rule


def test_findings_list_rules_whole(home: Path, as_of: str) -> None:
    _run(home, "audit", "--as-of", as_of)
    listed = json.loads(_run(home, "findings", "list", "--json"))["findings"]
    table = _run(home, "findings", "list")
    for rule in {finding["rule"] for finding in listed}:
        assert _lines_with(table, rule), rule


def test_inventory_list_shows_ids(home: Path) -> None:
    rows = json.loads(_run(home, "inventory", "list", "--json"))
    assert all(isinstance(row["id"], int) for row in rows)
    assert len({row["id"] for row in rows}) == len(rows)
    table = _run(home, "inventory", "list")
    for row in rows:
        found = [
            line for line in table.splitlines() if re.match(rf"│ *{row['id']} │", line)
        ]
        assert found, row["id"]
        if row["last_used_at"]:
            assert row["last_used_at"][:10] in found[0]
        if row["owner"]:
            assert _lines_with(table, row["owner"]), row["owner"]


def test_inventory_list_one_credential(home: Path) -> None:
    rows = json.loads(_run(home, "inventory", "list", "--json"))
    pairs = [(row["system"], row["status"]) for row in rows]
    system, status = next(pair for pair in pairs if pairs.count(pair) == 1)
    output = _run(home, "inventory", "list", "--system", system, "--status", status)
    assert output.rstrip().endswith("\n1 credential")


def test_inventory_list_system_any_case(home: Path) -> None:
    lower = json.loads(_run(home, "inventory", "list", "--system", "aws", "--json"))
    upper = json.loads(_run(home, "inventory", "list", "--system", "AWS", "--json"))
    assert lower
    assert upper == lower


def test_closed_pipe_exits_zero(home: Path) -> None:
    # The listing is larger than a pipe's buffer (64 KiB on Linux), so the
    # process is still writing when the reader closes the pipe.
    keysteward = str(Path(sys.executable).with_name("keysteward"))
    command = [keysteward, "--home", str(home)]
    process = subprocess.Popen(
        [*command, "inventory", "list", "--json"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
    )
    assert process.stdout is not None
    assert process.stdout.readline().strip() == b"["
    process.stdout.close()
    _, errors = process.communicate(timeout=60)
    assert process.returncode == 0
    assert errors == b""
