"""The default terminal report: a Rich table of ranked findings."""

from rich.console import Console
from rich.table import Table

from keysteward.audit.results import AuditSummary, RankedFinding

SEVERITY_STYLE = {
    "critical": "bold white on red",
    "high": "bold red",
    "medium": "yellow",
    "low": "cyan",
}


def render_table(
    console: Console,
    findings: list[RankedFinding],
    summary: AuditSummary | None = None,
    title: str = "Audit findings",
) -> None:
    """Print the findings as a table, with a one-line summary above it."""
    if summary is not None:
        counts = ", ".join(
            f"{count} {severity}"
            for severity, count in summary.findings_by_severity.items()
        )
        as_of = summary.as_of.date().isoformat() if summary.as_of else "unknown"
        console.print(
            f"Audit run {summary.run_id} as of {as_of}: "
            f"{summary.credentials_evaluated} active credentials, "
            f"{summary.total_findings} findings ({counts}), "
            f"{summary.resolved} earlier findings resolved."
        )
    if not findings:
        console.print("No findings.")
        return

    table = Table(title=title, show_lines=False, expand=True)
    table.add_column("#", justify="right", no_wrap=True)
    table.add_column("severity", no_wrap=True)
    table.add_column("credential", overflow="fold", ratio=2, min_width=10)
    table.add_column("system", overflow="fold", ratio=1, min_width=6)
    table.add_column("owner", overflow="fold", ratio=2, min_width=10)
    table.add_column("rule", overflow="fold", ratio=2, min_width=10)
    table.add_column("fix", overflow="fold", ratio=4, min_width=24)

    for finding in findings:
        table.add_row(
            str(finding.rank),
            f"[{SEVERITY_STYLE.get(finding.severity, '')}]{finding.severity}[/]",
            finding.credential,
            finding.system,
            finding.owner or "-",
            finding.rule,
            f"{finding.title}. {finding.recommendation}",
        )
    console.print(table)
