"""``keysteward discover`` as CI and a user run it: exit codes, reports, baseline."""

import json
import random
import string
from pathlib import Path

import pytest
from typer.testing import CliRunner

from keysteward.cli import app

runner = CliRunner()


def fake(prefix: str, length: int, seed: int) -> str:
    rng = random.Random(seed)
    return prefix + "".join(
        rng.choice(string.ascii_letters + string.digits) for _ in range(length)
    )


@pytest.fixture
def project(tmp_path: Path) -> Path:
    folder = tmp_path / "project"
    folder.mkdir()
    (folder / ".env").write_text(
        "GITHUB_TOKEN=" + fake("gh" + "p_", 36, 1) + "\n", encoding="utf-8"
    )
    (folder / "deploy.py").write_text(
        'STRIPE = "' + fake("sk" + "_live_", 40, 2) + '"\n', encoding="utf-8"
    )
    return folder


def invoke(tmp_path: Path, *arguments: str):
    return runner.invoke(
        app, ["--home", str(tmp_path / "home"), "discover", *arguments]
    )


def test_findings_exit_one(tmp_path: Path, project: Path) -> None:
    result = invoke(tmp_path, str(project), "--json")
    assert result.exit_code == 1, result.output
    report = json.loads(result.stdout)
    assert report["summary"]["new_findings"] == 2
    assert {f["rule"] for f in report["findings"]} == {
        "github-pat",
        "stripe-secret-key",
    }
    assert fake("gh" + "p_", 36, 1) not in result.stdout


def test_clean_tree_exit_zero(tmp_path: Path) -> None:
    folder = tmp_path / "clean"
    folder.mkdir()
    (folder / "a.py").write_text("print('hello')\n", encoding="utf-8")
    result = invoke(tmp_path, str(folder), "--no-store")
    assert result.exit_code == 0, result.output
    assert "0 findings" in result.stdout


def test_baseline_flow(tmp_path: Path, project: Path) -> None:
    baseline = tmp_path / "baseline.json"
    update = invoke(
        tmp_path,
        str(project),
        "--no-store",
        "--baseline",
        str(baseline),
        "--update-baseline",
    )
    assert update.exit_code == 0, update.output
    assert len(json.loads(baseline.read_text())["findings"]) == 2
    accepted = invoke(tmp_path, str(project), "--no-store", "--baseline", str(baseline))
    assert accepted.exit_code == 0, accepted.output
    (project / "new.env").write_text(
        "SLACK=" + "xo" + "xb-402938475610-583920174635-" + fake("", 24, 3) + "\n",
        encoding="utf-8",
    )
    newer = invoke(
        tmp_path, str(project), "--no-store", "--baseline", str(baseline), "--json"
    )
    assert newer.exit_code == 1, newer.output
    report = json.loads(newer.stdout)
    assert [f["rule"] for f in report["findings"] if f["new"]] == ["slack-bot-token"]
    strict = invoke(
        tmp_path,
        str(project),
        "--no-store",
        "--baseline",
        str(baseline),
        "--update-baseline",
        "--fail-on-new",
    )
    assert strict.exit_code == 1


def test_sarif_file_written(tmp_path: Path, project: Path) -> None:
    sarif = tmp_path / "out.sarif"
    result = invoke(tmp_path, str(project), "--sarif", str(sarif))
    assert result.exit_code == 1, result.output
    log = json.loads(sarif.read_text())
    assert log["version"] == "2.1.0"
    assert len(log["runs"][0]["results"]) == 2


def test_html_file_written(tmp_path: Path, project: Path) -> None:
    page = tmp_path / "report.html"
    result = invoke(tmp_path, str(project), "--no-store", "--html", str(page))
    assert result.exit_code == 1, result.output
    text = page.read_text()
    assert "stripe-secret-key" in text
    assert fake("sk" + "_live_", 40, 2) not in text


def test_store_records_scan(tmp_path: Path, project: Path) -> None:
    invoke(tmp_path, str(project))
    status = runner.invoke(app, ["--home", str(tmp_path / "home"), "status", "--json"])
    tables = json.loads(status.stdout)["tables"]
    assert tables["discovery_hits"] == 2
    assert tables["credentials"] == 2


@pytest.mark.parametrize(
    ("arguments", "message"),
    [
        (["{missing}"], "does not exist"),
        (["{project}", "--update-baseline"], "--baseline"),
        (["{project}", "--rules", "{missing}"], "cannot read rule file"),
        (["{project}", "--baseline", "{missing}"], "cannot read baseline"),
        (["{project}", "--json", "--sarif", "-"], "choose one"),
    ],
)
def test_bad_input_exit_two(
    tmp_path: Path, project: Path, arguments: list[str], message: str
) -> None:
    filled = [
        item.format(missing=tmp_path / "absent", project=project) for item in arguments
    ]
    result = invoke(tmp_path, *filled, "--no-store")
    assert result.exit_code == 2, result.output
    assert message in result.output
