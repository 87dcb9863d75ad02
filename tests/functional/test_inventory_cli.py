"""``keysteward import`` and ``inventory list|export`` as a user runs them,
on the example organisation shipped in examples/."""

import filecmp
import json
import subprocess
import sys
from pathlib import Path

import pytest
from typer.testing import CliRunner

from keysteward.cli import app

runner = CliRunner()
EXAMPLES = Path(__file__).resolve().parents[2] / "examples"


def invoke(home: Path, *args: str) -> str:
    result = runner.invoke(app, ["--home", str(home), *args])
    assert result.exit_code == 0, result.output
    return result.stdout


def test_examples_import_idempotent(tmp_path: Path) -> None:
    home = tmp_path / "home"
    first = json.loads(invoke(home, "import", str(EXAMPLES), "--json"))
    counts = first["counts"]
    assert counts["added"] == 197
    # 40 from the roster, and one placeholder for an IAM user that no roster row claims.
    assert counts["people_added"] == 41
    assert first["files"][0]["format"] == "people.roster"
    assert all(f["detected"] for f in first["files"])
    second = json.loads(invoke(home, "import", str(EXAMPLES), "--json"))
    assert second["counts"]["added"] == 0
    assert second["counts"]["changed"] == 0
    assert second["counts"]["people_added"] == 0
    assert second["counts"]["unchanged"] == 197


def test_examples_link_every_person(tmp_path: Path) -> None:
    home = tmp_path / "home"
    invoke(home, "import", str(EXAMPLES))
    exported = json.loads(invoke(home, "inventory", "export", "--format", "json"))
    emails = {person["email"] for person in exported["people"]}
    assert len(emails) == 41
    unresolved = [e for e in emails if e.endswith(".invalid")]
    assert unresolved == ["aws.legacy-webhook-user@unresolved.invalid"]
    departed = [p for p in exported["people"] if p["status"] == "departed"]
    assert len(departed) == 8
    systems = {system["name"]: system for system in exported["systems"]}
    assert len(systems) == 15
    assert systems["mixpanel"]["status"] == "decommissioned"


def test_examples_stripe_token_dropped(tmp_path: Path) -> None:
    home = tmp_path / "home"
    invoke(home, "import", str(EXAMPLES))
    database = (home / "keysteward.db").read_bytes()
    assert b"TESTMODE-TOKEN-PLACEHOLDER" not in database
    text = invoke(home, "inventory", "export")
    assert "TESTMODE-TOKEN-PLACEHOLDER" not in text


def test_dry_run_text_summary(tmp_path: Path) -> None:
    home = tmp_path / "home"
    output = invoke(home, "import", str(EXAMPLES / "okta_api_tokens.json"), "--dry-run")
    assert "okta_api_tokens.json: okta.api_tokens (detected)" in output
    assert "Dry run, nothing written. Would have 5 added" in output
    listed = json.loads(invoke(home, "inventory", "list", "--json"))
    assert listed == []


def test_inventory_list_filters(tmp_path: Path) -> None:
    home = tmp_path / "home"
    invoke(home, "import", str(EXAMPLES))
    okta = json.loads(invoke(home, "inventory", "list", "--system", "okta", "--json"))
    assert len(okta) == 5
    assert {row["system"] for row in okta} == {"okta"}
    revoked = json.loads(
        invoke(home, "inventory", "list", "--status", "revoked", "--json")
    )
    assert {row["source_id"] for row in revoked} == {
        "apikey_01EXAMPLE000000000104",
        "webhook:1000000105",
    }


def test_list_unknown_system_error(tmp_path: Path) -> None:
    result = runner.invoke(
        app, ["--home", str(tmp_path), "inventory", "list", "--system", "nope"]
    )
    assert result.exit_code == 2
    assert "unknown system 'nope'" in result.output


def test_export_round_trip_cli(tmp_path: Path) -> None:
    source_home = tmp_path / "source"
    invoke(source_home, "import", str(EXAMPLES))
    exported = tmp_path / "inventory.yaml"
    invoke(source_home, "inventory", "export", "-o", str(exported))
    target_home = tmp_path / "target"
    report = json.loads(
        invoke(target_home, "import", str(exported), "--source", "native", "--json")
    )
    assert report["counts"]["added"] == 197
    again = tmp_path / "again.yaml"
    invoke(target_home, "inventory", "export", "-o", str(again))
    assert exported.read_text() == again.read_text()


def test_invalid_file_exit_code(tmp_path: Path) -> None:
    broken = tmp_path / "okta.json"
    document = json.loads((EXAMPLES / "okta_api_tokens.json").read_text())
    document[2]["tokenWindow"] = "thirty days"
    broken.write_text(json.dumps(document))
    result = runner.invoke(app, ["--home", str(tmp_path / "h"), "import", str(broken)])
    assert result.exit_code == 2
    # The first line notes that a new store was created for this home.
    assert result.stderr.strip().splitlines()[-1] == (
        "error: okta.json: record 3: invalid field 'tokenWindow', found "
        "'thirty days'; expected an ISO 8601 duration such as P30D"
    )


def test_unknown_source_rejected(tmp_path: Path) -> None:
    result = runner.invoke(
        app,
        [
            "--home",
            str(tmp_path),
            "import",
            str(EXAMPLES / "okta_api_tokens.json"),
            "--source",
            "azure",
        ],
    )
    assert result.exit_code == 2
    assert "unknown source 'azure'" in result.output


@pytest.mark.parametrize("name", ["planted.json", "README.md"])
def test_examples_metadata_present(name: str) -> None:
    assert (EXAMPLES / name).is_file()


def test_generator_reproduces_examples(tmp_path: Path) -> None:
    subprocess.run(
        [sys.executable, str(EXAMPLES / "generate.py"), str(tmp_path)],
        check=True,
        capture_output=True,
    )
    generated = sorted(p.name for p in tmp_path.iterdir())
    shipped = sorted(p.name for p in EXAMPLES.iterdir() if p.name != "generate.py")
    assert generated == shipped
    match, mismatch, errors = filecmp.cmpfiles(
        tmp_path, EXAMPLES, generated, shallow=False
    )
    assert mismatch == []
    assert errors == []
    assert len(match) == len(generated)


def test_empty_okta_export_retires_tokens(tmp_path: Path) -> None:
    home = tmp_path / "home"
    invoke(home, "import", str(EXAMPLES))
    okta = json.loads((EXAMPLES / "okta_api_tokens.json").read_text())
    empty = tmp_path / "okta_api_tokens.json"
    empty.write_text("[]\n")

    undetected = runner.invoke(app, ["--home", str(home), "import", str(empty)])
    assert undetected.exit_code == 2
    assert "--source" in undetected.output

    report = json.loads(
        invoke(home, "import", str(empty), "--source", "okta", "--json")
    )
    assert report["counts"]["retired"] == len(okta)
    listed = json.loads(invoke(home, "inventory", "list", "--system", "okta", "--json"))
    assert {row["status"] for row in listed} == {"retired"}


def test_empty_export_with_two_tenants_rejected(tmp_path: Path) -> None:
    home = tmp_path / "home"
    okta = json.loads((EXAMPLES / "okta_api_tokens.json").read_text())
    first = tmp_path / "okta_a.json"
    first.write_text(json.dumps(okta[:1]))
    other = dict(okta[1])
    other["_links"] = {"self": {"href": "https://other.okta.example/api/v1/x"}}
    other.pop("_link", None)
    second = tmp_path / "okta_b.json"
    second.write_text(json.dumps([other]))
    invoke(home, "import", str(first), str(second))
    empty = tmp_path / "okta_empty.json"
    empty.write_text("[]")
    result = runner.invoke(
        app, ["--home", str(home), "import", str(empty), "--source", "okta"]
    )
    assert result.exit_code == 2
    assert "names no scope" in result.output
    listed = json.loads(invoke(home, "inventory", "list", "--system", "okta", "--json"))
    assert {row["status"] for row in listed} == {"active"}
