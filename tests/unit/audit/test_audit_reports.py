"""Report formats: CSV and JSON parse, the HTML page is self-contained."""

import csv
import io
import json
import re
from datetime import date

from rich.console import Console

from common.audit_inventory import AS_OF, InventoryBuilder, days_ago
from keysteward.audit.config import AuditConfig
from keysteward.audit.engine import AuditResult, run_audit
from keysteward.audit.reports.charts import bucket_ages
from keysteward.audit.reports.html import render_html
from keysteward.audit.reports.machine import CSV_COLUMNS, json_document, write_csv
from keysteward.audit.reports.table import render_table
from keysteward.db import Store

HOSTILE_NAME = "<script>alert(1)</script>"
FORMULA_NAME = '=HYPERLINK("x")'


def _audited(sqlite_store: Store) -> AuditResult:
    with sqlite_store.session() as session:
        builder = InventoryBuilder(session)
        gone = builder.person("Bob Former", departed_on=date(2026, 8, 15))
        builder.credential(owner_id=gone.id, privilege="admin", system="aws")
        builder.credential(name=HOSTILE_NAME, created_at=days_ago(800))
        builder.credential(scopes=[], privilege="unknown", system="okta")
        builder.credential(name=FORMULA_NAME, attributes={"stored_in": "sheet"})
    return run_audit(sqlite_store, as_of=AS_OF, config=AuditConfig())


def test_html_is_self_contained(sqlite_store: Store) -> None:
    result = _audited(sqlite_store)

    page = render_html(result.findings, result.summary)

    assert "http://" not in page
    assert "https://" not in page
    assert "<script" not in page
    assert not re.search(r"<link|<img|@import|url\(", page)
    assert page.count("<svg") == 3
    assert "Credential age since last rotation" in page
    assert "Findings per system" in page
    assert "Findings per owner" in page
    assert "How the ranking works" in page


def test_html_escapes_names(sqlite_store: Store) -> None:
    result = _audited(sqlite_store)
    page = render_html(result.findings, result.summary)
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in page


def test_html_summary_counts(sqlite_store: Store) -> None:
    result = _audited(sqlite_store)

    page = render_html(result.findings, result.summary)

    assert result.summary.findings_by_severity["critical"] == 1
    assert len(result.summary.departed_with_live_keys) == 1
    assert "Departed people with live keys" in page
    assert "bob.former" in page


def test_csv_parses_and_quotes_formulas(sqlite_store: Store) -> None:
    result = _audited(sqlite_store)
    stream = io.StringIO()

    write_csv(stream, result.findings)

    rows = list(csv.DictReader(io.StringIO(stream.getvalue())))
    assert tuple(rows[0]) == CSV_COLUMNS
    assert len(rows) == len(result.findings)
    assert [row["rank"] for row in rows] == [str(f.rank) for f in result.findings]
    formula = [row for row in rows if "HYPERLINK" in row["credential"]]
    assert [row["credential"] for row in formula] == ["'" + FORMULA_NAME]
    assert json.loads(rows[0]["evidence"])["ranking"]["privilege"] == 3.0


def test_json_document_round_trips(sqlite_store: Store) -> None:
    result = _audited(sqlite_store)

    document = json.loads(
        json.dumps(json_document(result.findings, result.summary), default=str)
    )

    assert document["run"]["total_findings"] == len(result.findings)
    assert document["findings"][0]["severity"] == "critical"
    assert "severity weight" in document["ranking"]


def test_age_buckets() -> None:
    buckets = dict(bucket_ages([0, 30, 31, 200, 365, 366, 5000]))
    assert buckets["0-30d"] == 2
    assert buckets["31-90d"] == 1
    assert buckets["181d-1y"] == 2
    assert buckets["1-2y"] == 1
    assert buckets[">3y"] == 1


def test_table_prints_markup_literally(sqlite_store: Store) -> None:
    with sqlite_store.session() as session:
        InventoryBuilder(session).credential(
            name="[bold]deploy[/bold]", scopes=[], privilege="unknown"
        )
    result = run_audit(sqlite_store, as_of=AS_OF, config=AuditConfig())
    console = Console(record=True, width=200)

    render_table(console, result.findings, result.summary)

    assert "[bold]deploy[/bold]" in console.export_text()


def test_table_narrow_keeps_owner(sqlite_store: Store) -> None:
    with sqlite_store.session() as session:
        InventoryBuilder(session).credential(scopes=[], privilege="unknown")
    result = run_audit(sqlite_store, as_of=AS_OF, config=AuditConfig())
    console = Console(record=True, width=80)

    render_table(console, result.findings, result.summary)

    text = console.export_text()
    assert "github," in text
    assert "olivia" in text
