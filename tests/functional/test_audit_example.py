"""The bundled example organisation: every planted problem is found.

``examples/planted.json`` names, per credential (source, source_id), a rule
that must fire with at least a given severity. Credentials without a planted
high or critical problem must get no high or critical finding, so the top of
the report stays trustworthy.
"""

import json
from pathlib import Path
from typing import Any

import pytest

from keysteward.audit.config import AuditConfig
from keysteward.audit.engine import AuditResult, run_audit
from keysteward.audit.results import RankedFinding, severity_at_least
from keysteward.cli.audit import parse_as_of
from keysteward.config import Settings
from keysteward.db import open_store
from keysteward.findings.models import Severity
from keysteward.inventory.services import run_import

EXAMPLES = Path(__file__).resolve().parents[2] / "examples"
SEVERE = (Severity.HIGH, Severity.CRITICAL)


@pytest.fixture(scope="module")
def planted() -> dict[str, Any]:
    return json.loads((EXAMPLES / "planted.json").read_text(encoding="utf-8"))


@pytest.fixture(scope="module")
def audited(
    planted: dict[str, Any], tmp_path_factory: pytest.TempPathFactory
) -> AuditResult:
    store = open_store(Settings(home=tmp_path_factory.mktemp("example-home")))
    try:
        run_import(store, [EXAMPLES], actor="test")
        as_of = parse_as_of(planted["now"])
        return run_audit(store, as_of=as_of, config=AuditConfig())
    finally:
        store.engine.dispose()


def _by_credential(findings: list[RankedFinding]) -> dict[tuple[str, str], list[Any]]:
    grouped: dict[tuple[str, str], list[RankedFinding]] = {}
    for finding in findings:
        grouped.setdefault((finding.source, finding.source_id), []).append(finding)
    return grouped


def test_every_planted_problem_found(
    planted: dict[str, Any], audited: AuditResult
) -> None:
    grouped = _by_credential(audited.findings)
    missing = []
    for problem in planted["problems"]:
        key = (problem["source"], problem["source_id"])
        matching = [
            finding
            for finding in grouped.get(key, [])
            if finding.rule == problem["rule"]
            and severity_at_least(finding.severity, Severity(problem["severity"]))
        ]
        if not matching:
            found = [(f.rule, f.severity) for f in grouped.get(key, [])]
            missing.append((key, problem["rule"], problem["severity"], found))
    assert missing == []


def test_no_unplanted_severe_finding(
    planted: dict[str, Any], audited: AuditResult
) -> None:
    severe_planted = {
        (problem["source"], problem["source_id"])
        for problem in planted["problems"]
        if problem["severity"] in SEVERE
    }
    unexpected = [
        (finding.source, finding.source_id, finding.rule, finding.severity)
        for finding in audited.findings
        if finding.severity in SEVERE
        and (finding.source, finding.source_id) not in severe_planted
    ]
    assert unexpected == []


def test_example_has_planted_problems(planted: dict[str, Any]) -> None:
    assert len(planted["problems"]) >= 10
    assert {problem["rule"] for problem in planted["problems"]} >= {
        "owner_departed",
        "rotation_overdue",
    }
