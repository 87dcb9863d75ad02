"""The default terminal report: a Rich table of ranked findings."""

from rich.console import Console
from rich.table import Table
from rich.text import Text

from keysteward.audit.results import AuditSummary, RankedFinding

# Below this many columns the system and owner go under the credential name.
NARROW_WIDTH = 120
SEVERITY_STYLE = {
    "critical": "bold white on red",
    "high": "bold red",
    "medium": "yellow",
    "low": "cyan",
}


def plural(count: int, noun: str) -> str:
    """Return ``count`` and ``noun``, with an "s" unless the count is 1."""
    return f"{count} {noun}" if count == 1 else f"{count} {noun}s"


def render_table(
    console: Console,
    findings: list[RankedFinding],
    summary: AuditSummary | None = None,
    title: str = "Audit findings",
) -> None:
    """Print the findings as a table, with a one-line summary above it.

    Names from imported files go in as Text, never as Rich markup, so a name
    such as ``[bold]`` prints as it is.
    """
    if summary is not None:
        counts = ", ".join(
            f"{count} {severity}"
            for severity, count in summary.findings_by_severity.items()
        )
        as_of = summary.as_of.date().isoformat() if summary.as_of else "unknown"
        console.print(
            f"Audit run {summary.run_id} as of {as_of}: "
            f"{plural(summary.credentials_evaluated, 'active credential')}, "
            f"{plural(summary.total_findings, 'finding')} ({counts}), "
            f"{plural(summary.resolved, 'earlier finding')} resolved."
        )
    if not findings:
        console.print("No findings.")
        return

    narrow = console.width < NARROW_WIDTH
    table = Table(title=title, show_lines=narrow, expand=True)
    table.add_column("#", justify="right", no_wrap=True)
    table.add_column("severity", no_wrap=True)
    table.add_column("credential", overflow="fold", ratio=2, min_width=10)
    if not narrow:
        table.add_column("system", overflow="fold", ratio=1, min_width=6)
        table.add_column("owner", overflow="fold", ratio=2, min_width=10)
    # Rule ids are searched for and passed to --rule, so they never wrap.
    table.add_column("rule", no_wrap=True)
    table.add_column("fix", overflow="fold", ratio=4, min_width=24)

    for finding in findings:
        severity = Text(
            finding.severity, style=SEVERITY_STYLE.get(finding.severity, "")
        )
        owner = finding.owner or "no owner"
        if narrow:
            credential = Text(finding.credential)
            credential.append(f"\n{finding.system}, {owner}", style="dim")
            cells = [credential]
        else:
            cells = [Text(finding.credential), Text(finding.system), Text(owner)]
        table.add_row(
            str(finding.rank),
            severity,
            *cells,
            Text(finding.rule),
            Text(finding.recommendation),
        )
    console.print(table)
