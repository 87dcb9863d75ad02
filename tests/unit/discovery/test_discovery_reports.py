"""Reports (JSON, SARIF 2.1.0) and baselines never hold a whole secret."""

import json
from pathlib import Path

import pytest

from keysteward.crypto.fingerprint import new_salt
from keysteward.discovery.baseline import Baseline, load_baseline, write_baseline
from keysteward.discovery.reports import html_report, json_report, sarif_report
from keysteward.discovery.rules import default_rules
from keysteward.discovery.scan import ScanResult, run_scan
from keysteward.errors import InvalidInputError


@pytest.fixture
def result(tmp_path: Path, samples: dict) -> ScanResult:
    (tmp_path / "a.env").write_text(
        samples["github-pat"][0] + samples["sendgrid-api-key"][0], encoding="utf-8"
    )
    (tmp_path / "my notes.txt").write_text(samples["jwt"][0], encoding="utf-8")
    return run_scan([tmp_path], default_rules(), new_salt())


def test_json_report_redacted(result: ScanResult, samples: dict) -> None:
    text = json.dumps(json_report(result))
    assert json_report(result)["summary"]["findings"] == 3
    for rule in ("github-pat", "sendgrid-api-key", "jwt"):
        assert samples[rule][1] not in text


def test_sarif_structure(result: ScanResult, samples: dict) -> None:
    log = sarif_report(result)
    assert log["version"] == "2.1.0"
    assert log["$schema"].endswith("sarif-2.1.0.json")
    assert len(log["runs"]) == 1
    run = log["runs"][0]
    driver = run["tool"]["driver"]
    assert driver["name"] == "keysteward"
    rule_ids = [rule["id"] for rule in driver["rules"]]
    assert len(rule_ids) == len(set(rule_ids))
    for rule in driver["rules"]:
        assert rule["shortDescription"]["text"]
    assert len(run["results"]) == 3
    for item in run["results"]:
        assert driver["rules"][item["ruleIndex"]]["id"] == item["ruleId"]
        assert item["level"] in ("none", "note", "warning", "error")
        assert item["message"]["text"]
        location = item["locations"][0]["physicalLocation"]
        assert " " not in location["artifactLocation"]["uri"]
        assert location["region"]["startLine"] >= 1
        assert location["region"]["startColumn"] >= 1
        assert item["baselineState"] in ("new", "unchanged", "updated", "absent")
        assert len(item["partialFingerprints"]["secretFingerprint/v1"]) == 64
    text = json.dumps(log)
    for rule in ("github-pat", "sendgrid-api-key", "jwt"):
        assert samples[rule][1] not in text


def test_baseline_round_trip(tmp_path: Path, result: ScanResult, samples: dict) -> None:
    path = tmp_path / "baseline.json"
    baseline = Baseline()
    baseline.replace_with(result.findings[:2])
    write_baseline(path, baseline)
    stored = path.read_text(encoding="utf-8")
    for rule in ("github-pat", "sendgrid-api-key"):
        assert samples[rule][1] not in stored
    loaded = load_baseline(path)
    loaded.mark(result.findings)
    assert [finding.baselined for finding in result.findings] == [True, True, False]


def test_baseline_other_path_is_new(tmp_path: Path, result: ScanResult) -> None:
    baseline = Baseline()
    baseline.replace_with(result.findings)
    moved = result.findings[0]
    moved.path = "elsewhere/a.env"
    baseline.mark(result.findings)
    assert moved.baselined is False


@pytest.mark.parametrize(
    "content", ["not json", '{"version": 9}', '{"version": 1, "findings": []}']
)
def test_bad_baseline_rejected(tmp_path: Path, content: str) -> None:
    path = tmp_path / "b.json"
    path.write_text(content, encoding="utf-8")
    with pytest.raises(InvalidInputError, match="--update-baseline"):
        load_baseline(path)


def test_html_report_redacted_escaped(tmp_path: Path, samples: dict) -> None:
    (tmp_path / "<odd>&.env").write_text(samples["github-pat"][0], encoding="utf-8")
    result = run_scan([tmp_path], default_rules(), new_salt())
    page = html_report(result)
    assert page.startswith("<!doctype html>")
    assert "ghp_…" in page
    assert samples["github-pat"][1] not in page
    assert "&lt;odd&gt;&amp;.env" in page
    assert "<odd>" not in page
