"""``keysteward audit`` and ``keysteward findings list``."""

import sys
from datetime import UTC, date, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer
from rich.progress import Progress

from keysteward.cli._context import console, error_console, print_json, state_of
from keysteward.errors import InvalidInputError

if TYPE_CHECKING:
    from keysteward.audit.config import AuditConfig
    from keysteward.audit.engine import AuditResult, ProgressCallback
    from keysteward.audit.results import RankedFinding

SEVERITY_NAMES = ("low", "medium", "high", "critical")
# Rows the HTML report lists without --limit; its summary and charts still
# count every finding, and --csv or --json give the whole list.
HTML_DEFAULT_ROWS = 1000

findings_app = typer.Typer(
    help="List and accept the findings of audit runs.", no_args_is_help=True
)


def register(app: typer.Typer) -> None:
    app.command("audit")(audit)
    findings_app.command("list")(list_findings)
    findings_app.command("accept")(accept)
    app.add_typer(findings_app, name="findings")


def parse_as_of(value: str | None) -> datetime:
    """Return the audit date as an aware UTC datetime; today's time when unset.

    A bare date means midnight UTC at the start of that day.
    Raises InvalidInputError naming the value when it is not ISO 8601.
    """
    from keysteward.clock import utcnow

    if value is None:
        return utcnow()
    text = value.strip()
    try:
        if len(text) == 10:
            day = date.fromisoformat(text)
            return datetime(day.year, day.month, day.day, tzinfo=UTC)
        moment = datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        raise InvalidInputError(
            f"invalid --as-of {value!r}: expected an ISO date such as 2026-12-04 "
            "or a time such as 2026-12-04T00:00:00Z"
        ) from None
    if moment.tzinfo is None:
        return moment.replace(tzinfo=UTC)
    return moment.astimezone(UTC)


def _actor() -> str:
    """Return the event actor for this command: the OS user running it."""
    from keysteward.cli.vault import operator_actor

    return operator_actor()


def _check_severity(option: str, value: str | None) -> None:
    if value is not None and value not in SEVERITY_NAMES:
        raise InvalidInputError(
            f"invalid {option} {value!r}; use one of {', '.join(SEVERITY_NAMES)}"
        )


def audit(
    ctx: typer.Context,
    as_of: Annotated[
        str | None,
        typer.Option(
            "--as-of",
            help="Judge ages as of this ISO date or time (UTC) [default: now].",
        ),
    ] = None,
    json_output: Annotated[
        bool, typer.Option("--json", help="Print the report as JSON.")
    ] = False,
    csv_output: Annotated[
        bool, typer.Option("--csv", help="Print the findings as CSV.")
    ] = False,
    html_file: Annotated[
        Path | None,
        typer.Option(
            "--html",
            help="Also write a self-contained HTML report here (the first 1000 "
            "findings unless --limit is given).",
        ),
    ] = None,
    fail_on: Annotated[
        str | None,
        typer.Option(
            "--fail-on",
            help="Exit with code 1 when an open finding is at or above this "
            "severity: low, medium, high or critical.",
        ),
    ] = None,
    system: Annotated[
        str | None,
        typer.Option("--system", help="Audit only the credentials of this system."),
    ] = None,
    limit: Annotated[
        int | None,
        typer.Option(
            "--limit", min=1, help="Show only the first N findings of the ranking."
        ),
    ] = None,
    no_store: Annotated[
        bool,
        typer.Option(
            "--no-store",
            help="Report without storing the run, so stored findings stay as "
            "they are; needed for an --as-of before the newest stored run.",
        ),
    ] = False,
) -> None:
    """Evaluate every active credential, store the findings and report them ranked."""
    from keysteward.audit.config import load_audit_config
    from keysteward.audit.engine import run_audit
    from keysteward.audit.results import severity_at_least
    from keysteward.findings.models import FindingStatus, Severity

    if json_output and csv_output:
        raise InvalidInputError(
            "invalid options: --json and --csv cannot be used together; pass one"
        )
    _check_severity("--fail-on", fail_on)
    moment = parse_as_of(as_of)
    state = state_of(ctx)
    config = load_audit_config(state.settings)

    quiet = json_output or csv_output or not console.is_terminal
    with _progress(quiet) as progress:
        result = run_audit(
            state.store,
            as_of=moment,
            config=config,
            system=system,
            actor=_actor(),
            progress=progress,
            keep=not no_store,
        )
    shown = result.findings[:limit] if limit else result.findings

    if html_file is not None:
        listed = shown if limit else shown[:HTML_DEFAULT_ROWS]
        _write_html(html_file, listed, result, config, system)
    _print_report(shown, result, json_output, csv_output)
    if no_store:
        error_console.print("note: --no-store given, so this run was not stored.")
    if html_file is not None and not (json_output or csv_output):
        console.print(f"HTML report written to {html_file}")

    if fail_on is not None:
        floor = Severity(fail_on)
        if any(
            finding.status == FindingStatus.OPEN
            and severity_at_least(finding.severity, floor)
            for finding in result.findings
        ):
            raise typer.Exit(1)


def _print_report(
    shown: "list[RankedFinding]",
    result: "AuditResult",
    json_output: bool,
    csv_output: bool,
) -> None:
    from keysteward.audit.reports.machine import json_document, write_csv
    from keysteward.audit.reports.table import render_table

    if json_output:
        print_json(json_document(shown, result.summary))
    elif csv_output:
        write_csv(sys.stdout, shown)
    else:
        render_table(console, shown, result.summary)


def _write_html(
    path: Path,
    shown: "list[RankedFinding]",
    result: "AuditResult",
    config: "AuditConfig",
    system: str | None,
) -> None:
    from keysteward.audit.reports.html import render_html, write_html

    rotation_days = config.thresholds_for(system).rotation_max_age_days
    page = render_html(shown, result.summary, rotation_days, charted=result.findings)
    write_html(path, page)


class _progress:
    """A Rich progress bar on a terminal; nothing when ``quiet``."""

    def __init__(self, quiet: bool) -> None:
        self.quiet = quiet
        self._bar: Progress | None = None

    def __enter__(self) -> "ProgressCallback | None":
        if self.quiet:
            return None
        self._bar = Progress(console=console, transient=True)
        bar = self._bar
        bar.start()
        task = bar.add_task("Evaluating credentials", total=None)

        def advance(done: int, total: int) -> None:
            bar.update(task, completed=done, total=total)

        return advance

    def __exit__(self, *exc_info: object) -> None:
        if self._bar is not None:
            self._bar.stop()


def list_findings(
    ctx: typer.Context,
    json_output: Annotated[
        bool, typer.Option("--json", help="Print JSON instead of a table.")
    ] = False,
    severity: Annotated[
        str | None,
        typer.Option("--severity", help="Only findings of this severity."),
    ] = None,
    rule: Annotated[
        str | None, typer.Option("--rule", help="Only findings of this rule id.")
    ] = None,
    run: Annotated[
        int | None,
        typer.Option(
            "--run",
            help="List every finding of this audit run id, whatever its status.",
        ),
    ] = None,
    limit: Annotated[
        int | None, typer.Option("--limit", min=1, help="Show only the first N.")
    ] = None,
) -> None:
    """List the open findings the latest audit left, most urgent first."""
    from keysteward.audit import queries
    from keysteward.audit.reports.machine import json_document
    from keysteward.audit.reports.table import render_table

    _check_severity("--severity", severity)
    store = state_of(ctx).store
    with store.session() as session:
        latest = queries.latest_run(session)
        findings = queries.list_findings(
            session, severity=severity, rule=rule, run_id=run
        )
    shown = findings[:limit] if limit else findings
    if json_output:
        document = json_document(shown)
        document["latest_run_id"] = latest.id if latest else None
        print_json(document)
        return
    if latest is None:
        console.print("No audit has run yet; run `keysteward audit`.")
        return
    title = f"Findings of run {run}" if run else "Open findings"
    render_table(console, shown, title=title)


def accept(
    ctx: typer.Context,
    finding_id: Annotated[
        int, typer.Argument(help="Id of the open finding (findings list --json).")
    ],
    reason: Annotated[
        str,
        typer.Option(
            "--reason", help="Why the risk is accepted; kept with the finding."
        ),
    ],
    json_output: Annotated[
        bool, typer.Option("--json", help="Print the finding as JSON.")
    ] = False,
) -> None:
    """Accept an open finding's risk; later runs keep it out of --fail-on."""
    from keysteward.audit.acceptance import accept_finding

    store = state_of(ctx).store
    with store.session() as session:
        finding = accept_finding(session, finding_id, reason, _actor())
        summary = {
            "finding_id": finding.id,
            "rule": finding.rule,
            "credential_id": finding.credential_id,
            "status": finding.status,
            "acceptance": finding.evidence["acceptance"],
        }
    if json_output:
        print_json(summary)
        return
    console.print(
        f"Finding {finding_id} ({summary['rule']}) accepted; "
        "later audits keep it accepted while the problem stays the same."
    )
