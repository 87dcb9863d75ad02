"""Machine-readable audit reports: JSON and CSV."""

import csv
import json
from typing import Any, TextIO

from keysteward.audit.reports import RANKING_EXPLANATION
from keysteward.audit.results import AuditSummary, RankedFinding

FORMULA_PREFIXES = ("=", "+", "-", "@", "\t", "\r")
CSV_COLUMNS = (
    "rank",
    "severity",
    "score",
    "rule",
    "credential",
    "system",
    "owner",
    "privilege",
    "title",
    "recommendation",
    "status",
    "finding_id",
    "credential_id",
    "source",
    "source_id",
    "evidence",
)


def json_document(
    findings: list[RankedFinding], summary: AuditSummary | None = None
) -> dict[str, Any]:
    """Return the JSON report: the run summary, the ranking rule and the findings."""
    document: dict[str, Any] = {}
    if summary is not None:
        document["run"] = summary.as_dict()
        document["ranking"] = RANKING_EXPLANATION
    document["findings"] = [finding.as_dict() for finding in findings]
    return document


def write_csv(stream: TextIO, findings: list[RankedFinding]) -> None:
    """Write one CSV row per finding; the evidence column contains JSON."""
    writer = csv.DictWriter(stream, fieldnames=CSV_COLUMNS, lineterminator="\n")
    writer.writeheader()
    for finding in findings:
        row = finding.as_dict()
        row["evidence"] = json.dumps(finding.evidence, sort_keys=True)
        writer.writerow({column: _cell(row[column]) for column in CSV_COLUMNS})


def _cell(value: Any) -> Any:
    """Return ``value``, quoted so a spreadsheet cannot run it as a formula.

    Credential names come from exports, so a name such as ``=HYPERLINK(...)``
    would otherwise become a live formula when the CSV is opened.
    """
    if isinstance(value, str) and value.startswith(FORMULA_PREFIXES):
        return "'" + value
    return value
