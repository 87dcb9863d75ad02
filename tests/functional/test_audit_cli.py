"""``keysteward audit`` and ``keysteward findings list`` as a user runs them."""

import csv
import io
import json
from datetime import date
from pathlib import Path

import pytest
from typer.testing import CliRunner

from common.audit_inventory import InventoryBuilder
from keysteward.cli import app
from keysteward.cli._context import console
from keysteward.config import Settings
from keysteward.db import open_store

runner = CliRunner()
AS_OF = ["--as-of", "2026-12-04"]


@pytest.fixture
def home(tmp_path: Path) -> Path:
    """A store with one high finding (departed owner) and one low one."""
    home = tmp_path / "home"
    store = open_store(Settings(home=home))
    with store.session() as session:
        builder = InventoryBuilder(session)
        gone = builder.person("Bob Former", departed_on=date(2026, 8, 15))
        builder.credential(system="aws", owner_id=gone.id, privilege="write")
        builder.credential(system="okta", scopes=[], privilege="unknown")
    store.engine.dispose()
    return home


def _run(home: Path, *args: str) -> tuple[int, str, str]:
    result = runner.invoke(app, ["--home", str(home), *args])
    return result.exit_code, result.stdout, result.stderr


@pytest.fixture
def wide_console(monkeypatch: pytest.MonkeyPatch) -> None:
    """Widen the shared Rich console so rule ids print on one line."""
    monkeypatch.setattr(console, "width", 200)


@pytest.mark.usefixtures("wide_console")
def test_audit_table_default(home: Path) -> None:
    code, out, _ = _run(home, "audit", *AS_OF)
    assert code == 0
    assert "owner_departed" in out
    assert "unknown_access" in out
    assert "2 active credentials" in out


def test_audit_json_parses(home: Path) -> None:
    code, out, _ = _run(home, "audit", *AS_OF, "--json")
    document = json.loads(out)
    assert code == 0
    assert [f["rule"] for f in document["findings"]] == [
        "owner_departed",
        "unknown_access",
    ]
    assert document["run"]["as_of"].startswith("2026-12-04")
    assert document["run"]["findings_by_severity"]["high"] == 1


def test_audit_csv_parses(home: Path) -> None:
    code, out, _ = _run(home, "audit", *AS_OF, "--csv")
    rows = list(csv.DictReader(io.StringIO(out)))
    assert code == 0
    assert [row["severity"] for row in rows] == ["high", "low"]
    assert rows[0]["system"] == "aws"


def test_audit_limit_and_system(home: Path) -> None:
    _, limited, _ = _run(home, "audit", *AS_OF, "--json", "--limit", "1")
    _, okta, _ = _run(home, "audit", *AS_OF, "--json", "--system", "okta")
    assert [f["rule"] for f in json.loads(limited)["findings"]] == ["owner_departed"]
    assert [f["system"] for f in json.loads(okta)["findings"]] == ["okta"]


@pytest.mark.parametrize(
    ("level", "expected"),
    [("low", 1), ("medium", 1), ("high", 1), ("critical", 0)],
)
def test_fail_on_exit_codes(home: Path, level: str, expected: int) -> None:
    code, _, _ = _run(home, "audit", *AS_OF, "--json", "--fail-on", level)
    assert code == expected


def test_fail_on_clean_store(tmp_path: Path) -> None:
    code, _, _ = _run(tmp_path / "empty", "audit", "--fail-on", "low")
    assert code == 0


def test_audit_writes_html(home: Path, tmp_path: Path) -> None:
    page = tmp_path / "report.html"
    code, out, _ = _run(home, "audit", *AS_OF, "--html", str(page))
    html = page.read_text(encoding="utf-8")
    assert code == 0
    assert f"HTML report written to {page}" in out.replace("\n", "")
    assert "<svg" in html
    assert "http://" not in html
    assert "https://" not in html


@pytest.mark.parametrize(
    ("args", "code", "named"),
    [
        (["--as-of", "04/12/2026"], 2, "04/12/2026"),
        (["--fail-on", "severe"], 2, "severe"),
        (["--system", "nosuch"], 4, "nosuch"),
        (["--json", "--csv"], 2, "--json"),
        (["--html", "/nonexistent-dir/r.html"], 2, "/nonexistent-dir/r.html"),
    ],
)
def test_audit_bad_input(home: Path, args: list[str], code: int, named: str) -> None:
    exit_code, _, err = _run(home, "audit", *args)
    assert exit_code == code
    assert err.startswith("error: ")
    assert named in err
    assert "Traceback" not in err


def test_findings_list_after_audit(home: Path) -> None:
    _run(home, "audit", *AS_OF)

    code, out, _ = _run(home, "findings", "list", "--json")
    high_code, high, _ = _run(home, "findings", "list", "--json", "--severity", "high")
    _, by_rule, _ = _run(home, "findings", "list", "--json", "--rule", "unknown_access")

    assert code == 0
    assert len(json.loads(out)["findings"]) == 2
    assert high_code == 0
    assert [f["rule"] for f in json.loads(high)["findings"]] == ["owner_departed"]
    assert [f["system"] for f in json.loads(by_rule)["findings"]] == ["okta"]


@pytest.mark.usefixtures("wide_console")
def test_findings_list_table(home: Path) -> None:
    _run(home, "audit", *AS_OF)
    code, out, _ = _run(home, "findings", "list")
    assert code == 0
    assert "owner_departed" in out


def test_findings_list_before_audit(tmp_path: Path) -> None:
    code, out, _ = _run(tmp_path / "fresh", "findings", "list")
    assert code == 0
    assert "No audit has run yet" in out


def test_findings_list_bad_rule(home: Path) -> None:
    code, _, err = _run(home, "findings", "list", "--rule", "stale_key")
    assert code == 2
    assert "stale_key" in err
    assert "rotation_overdue" in err


def test_audit_reads_config_thresholds(home: Path) -> None:
    (home / "config.toml").write_text(
        '[audit.systems.okta]\ndisabled_rules = ["unknown_access"]\n',
        encoding="utf-8",
    )
    _, out, _ = _run(home, "audit", *AS_OF, "--json")
    assert [f["rule"] for f in json.loads(out)["findings"]] == ["owner_departed"]


def test_audit_bad_config_named(home: Path) -> None:
    (home / "config.toml").write_text(
        "[audit]\nrotation_max_age_days = -5\n", encoding="utf-8"
    )
    code, _, err = _run(home, "audit")
    assert code == 3
    assert "audit.rotation_max_age_days" in err


def test_html_lists_limited_rows(home: Path, tmp_path: Path) -> None:
    page = tmp_path / "report.html"
    code, _, _ = _run(home, "audit", *AS_OF, "--limit", "1", "--html", str(page))
    html = page.read_text(encoding="utf-8")
    assert code == 0
    assert "1 of 2 findings" in html
    assert "Only the first 1 are listed here." in html


def _open_ids(home: Path) -> dict[str, int]:
    _, out, _ = _run(home, "findings", "list", "--json")
    return {f["rule"]: f["finding_id"] for f in json.loads(out)["findings"]}


def test_accept_carries_to_next_run(home: Path) -> None:
    _run(home, "audit", *AS_OF)
    departed = _open_ids(home)["owner_departed"]

    code, out, _ = _run(
        home, "findings", "accept", str(departed), "--reason", "kept until March"
    )
    fail_code, rerun, _ = _run(home, "audit", *AS_OF, "--json", "--fail-on", "high")

    assert code == 0
    assert f"Finding {departed}" in out
    findings = {f["rule"]: f for f in json.loads(rerun)["findings"]}
    assert findings["owner_departed"]["status"] == "accepted"
    acceptance = findings["owner_departed"]["evidence"]["acceptance"]
    assert acceptance["reason"] == "kept until March"
    assert fail_code == 0


@pytest.mark.parametrize(
    ("args", "code", "named"),
    [
        (["999", "--reason", "fine"], 4, "finding 999 not found"),
        (["{low}", "--reason", "  "], 2, "missing --reason"),
        (["{low}", "--reason", "x" * 501], 2, "501 characters"),
    ],
)
def test_accept_bad_input(home: Path, args: list[str], code: int, named: str) -> None:
    _run(home, "audit", *AS_OF)
    low = _open_ids(home)["unknown_access"]
    filled = [arg.replace("{low}", str(low)) for arg in args]

    exit_code, _, err = _run(home, "findings", "accept", *filled)

    assert exit_code == code
    assert named in err


def test_accept_twice_rejected(home: Path) -> None:
    _run(home, "audit", *AS_OF)
    low = str(_open_ids(home)["unknown_access"])
    _run(home, "findings", "accept", low, "--reason", "reviewed")

    code, _, err = _run(home, "findings", "accept", low, "--reason", "again")

    assert code == 2
    assert "is accepted" in err


def _open_findings(home: Path) -> list[dict]:
    code, out, _ = _run(home, "findings", "list", "--json")
    assert code == 0
    return json.loads(out)


def test_backdated_audit_rejected(home: Path) -> None:
    assert _run(home, "audit", *AS_OF)[0] == 0
    before = _open_findings(home)
    code, _, err = _run(home, "audit", "--as-of", "0001-01-01")
    assert code == 2
    assert "2026-12-04" in err
    assert "--no-store" in err
    assert _open_findings(home) == before


def test_backdated_audit_no_store(home: Path) -> None:
    assert _run(home, "audit", *AS_OF)[0] == 0
    before = _open_findings(home)
    code, out, err = _run(
        home, "audit", "--as-of", "0001-01-01", "--no-store", "--json"
    )
    assert code == 0
    # Bob had not left yet on that date.
    rules = [f["rule"] for f in json.loads(out)["findings"]]
    assert "owner_departed" not in rules
    assert "not stored" in err
    assert _open_findings(home) == before
    code, _, _ = _run(home, "audit", *AS_OF)
    assert code == 0


@pytest.mark.usefixtures("wide_console")
def test_audit_system_any_case(home: Path) -> None:
    code, out, err = _run(home, "audit", *AS_OF, "--system", "AWS")
    assert code == 0, err
    assert "1 active credential," in out
    assert "owner_departed" in out
    assert "unknown_access" not in out
