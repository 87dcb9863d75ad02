"""Scan reports: a Rich table, JSON, HTML and SARIF 2.1.0, none with a whole secret."""

from typing import Any
from urllib.parse import quote

from rich.console import Console
from rich.table import Table

from keysteward import __version__
from keysteward.discovery.engine import Finding
from keysteward.discovery.scan import ScanResult

SARIF_VERSION = "2.1.0"
SARIF_SCHEMA = "https://json.schemastore.org/sarif-2.1.0.json"
# Length of the fingerprint shown in tables; JSON and SARIF carry all 64 hex digits.
SHORT_FINGERPRINT = 12


def finding_record(finding: Finding) -> dict[str, Any]:
    """Return one finding as a JSON-ready dict with the secret redacted."""
    return {
        "rule": finding.rule_id,
        "description": finding.rule.description,
        "system": finding.rule.system,
        "kind": finding.rule.kind,
        "path": finding.path,
        "line": finding.line,
        "column": finding.column,
        "pointer": finding.pointer,
        "commit": finding.commit,
        "author": finding.author,
        "context": finding.context,
        "redacted": finding.redacted,
        "fingerprint": finding.fingerprint,
        "new": not finding.baselined,
    }


def summary_record(result: ScanResult) -> dict[str, Any]:
    stats = result.stats
    return {
        "files": stats.files,
        "blobs": stats.blobs,
        "documents": stats.documents,
        "bytes": stats.bytes,
        "skipped_binary": stats.skipped_binary,
        "skipped_large": stats.skipped_large,
        "errors": stats.errors,
        "findings": len(result.findings),
        "new_findings": len(result.new_findings),
    }


def json_report(result: ScanResult) -> dict[str, Any]:
    return {
        "summary": summary_record(result),
        "findings": [finding_record(finding) for finding in result.findings],
    }


def print_table(result: ScanResult, console: Console) -> None:
    """Print the findings as a table, then a one-line summary."""
    if result.findings:
        table = Table("rule", "location", "commit", "secret", "fingerprint", "new")
        for finding in result.findings:
            location = f"{finding.path}:{finding.line}"
            if finding.pointer:
                location += f" ({finding.pointer})"
            commit = ""
            if finding.commit:
                commit = f"{finding.commit[:10]} {finding.author or ''}".strip()
            table.add_row(
                finding.rule_id,
                location,
                commit,
                finding.redacted,
                finding.fingerprint[:SHORT_FINGERPRINT],
                "no" if finding.baselined else "yes",
            )
        console.print(table)
    stats = result.stats
    megabytes = stats.bytes / 1_000_000
    console.print(
        f"{len(result.findings)} findings ({len(result.new_findings)} new) in "
        f"{stats.files} files and {stats.blobs} git blobs, {megabytes:.1f} MB; "
        f"{stats.skipped_binary} binary files skipped.",
        markup=False,
        highlight=False,
    )
    for error in stats.errors:
        console.print(f"warning: {error}", markup=False, highlight=False)


def _sarif_result(finding: Finding, rule_index: int) -> dict[str, Any]:
    where = f"{finding.path}:{finding.line}"
    if finding.pointer:
        where += f" ({finding.pointer})"
    if finding.commit:
        where += f" in commit {finding.commit[:12]}"
    properties: dict[str, Any] = {
        "redacted": finding.redacted,
        "context": finding.context,
    }
    for key in ("pointer", "commit", "author"):
        value = getattr(finding, key)
        if value:
            properties[key] = value
    return {
        "ruleId": finding.rule_id,
        "ruleIndex": rule_index,
        "level": "error",
        "message": {
            "text": f"{finding.rule.description} ({finding.redacted}) at {where}"
        },
        "locations": [
            {
                "physicalLocation": {
                    "artifactLocation": {"uri": quote(finding.path)},
                    "region": {
                        "startLine": finding.line,
                        "startColumn": finding.column,
                    },
                }
            }
        ],
        "partialFingerprints": {"secretFingerprint/v1": finding.fingerprint},
        "baselineState": "unchanged" if finding.baselined else "new",
        "properties": properties,
    }


def sarif_report(result: ScanResult) -> dict[str, Any]:
    """Return a SARIF 2.1.0 log with one run, its rules and one result per finding."""
    rules: list[dict[str, Any]] = []
    index_of: dict[str, int] = {}
    for finding in result.findings:
        rule = finding.rule
        if rule.id in index_of:
            continue
        index_of[rule.id] = len(rules)
        rules.append(
            {
                "id": rule.id,
                "name": rule.id.replace("-", " ").title().replace(" ", ""),
                "shortDescription": {"text": rule.description},
                "defaultConfiguration": {"level": "error"},
                "properties": {"tags": ["security", "secret", *rule.tags]},
            }
        )
    return {
        "$schema": SARIF_SCHEMA,
        "version": SARIF_VERSION,
        "runs": [
            {
                "tool": {
                    "driver": {
                        "name": "keysteward",
                        "version": __version__,
                        "rules": rules,
                    }
                },
                "columnKind": "unicodeCodePoints",
                "results": [
                    _sarif_result(finding, index_of[finding.rule_id])
                    for finding in result.findings
                ],
            }
        ],
    }


def html_report(result: ScanResult) -> str:
    """Return a standalone HTML page of the findings; every value is escaped."""
    from jinja2 import Environment, PackageLoader, select_autoescape

    environment = Environment(
        loader=PackageLoader("keysteward.discovery", "templates"),
        autoescape=select_autoescape(default=True, default_for_string=True),
    )
    template = environment.get_template("report.html.j2")
    report = json_report(result)
    return template.render(summary=report["summary"], findings=report["findings"])
