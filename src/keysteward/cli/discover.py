"""``keysteward discover``: find credentials in files, mail, sheets and git history."""

import json
import os
import secrets
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

from keysteward.cli._context import console, error_console, print_json, state_of
from keysteward.cli.vault import operator_actor
from keysteward.errors import InvalidInputError

if TYPE_CHECKING:
    from keysteward.discovery.rules import RuleSet
    from keysteward.discovery.scan import ScanResult
    from keysteward.discovery.sources import ScanStats

# Exit status when a scan finds credentials that no baseline accepts.
EXIT_NEW_FINDINGS = 1


def register(app: typer.Typer) -> None:
    app.command()(discover)


def discover(
    ctx: typer.Context,
    paths: Annotated[
        list[Path],
        typer.Argument(help="Files and folders to scan.", show_default=False),
    ],
    git: Annotated[
        bool,
        typer.Option(
            "--git", help="Also scan every blob in the git history of each PATH."
        ),
    ] = False,
    json_output: Annotated[
        bool, typer.Option("--json", help="Print JSON instead of a table.")
    ] = False,
    sarif: Annotated[
        Path | None,
        typer.Option(help="Write a SARIF 2.1.0 report to this file ('-' for stdout)."),
    ] = None,
    html: Annotated[
        Path | None,
        typer.Option(help="Write an HTML report to this file."),
    ] = None,
    baseline: Annotated[
        Path | None,
        typer.Option(
            help="Baseline file of accepted findings; they do not fail the scan."
        ),
    ] = None,
    update_baseline: Annotated[
        bool,
        typer.Option(
            "--update-baseline",
            help="Write the current findings to --baseline as accepted.",
        ),
    ] = False,
    rules: Annotated[
        list[Path] | None,
        typer.Option(
            "--rules",
            help="Extra rule file in gitleaks' TOML layout; repeat for more files.",
        ),
    ] = None,
    no_store: Annotated[
        bool,
        typer.Option(
            "--no-store", help="Do not record hits or link them to the inventory."
        ),
    ] = False,
    jobs: Annotated[
        int,
        typer.Option(
            min=0,
            help="Worker processes; 0 means one per available CPU.",
        ),
    ] = 0,
    fail_on_new: Annotated[
        bool,
        typer.Option(
            "--fail-on-new",
            help="With --update-baseline, still exit 1 when the scan found new "
            "findings (without it, updating the baseline exits 0).",
        ),
    ] = False,
) -> None:
    """Scan PATHs for credentials; exit 1 when new findings exist, 0 when none."""
    from keysteward.credentials.services import fingerprint_salt
    from keysteward.discovery.baseline import Baseline, load_baseline, write_baseline
    from keysteward.discovery.reports import (
        html_report,
        json_report,
        print_table,
        sarif_report,
    )
    from keysteward.discovery.rules import load_rules
    from keysteward.discovery.services import record_scan

    if json_output and sarif is not None and str(sarif) == "-":
        raise InvalidInputError(
            "--json and --sarif - both write to stdout; choose one, or give "
            "--sarif a file name"
        )
    if update_baseline and baseline is None:
        raise InvalidInputError("--update-baseline needs --baseline FILE to write to")
    ruleset = load_rules(list(rules or []))
    accepted: Baseline | None = None
    if baseline is not None:
        if baseline.exists() or not update_baseline:
            accepted = load_baseline(baseline)
        else:
            accepted = Baseline()

    state = state_of(ctx)
    if no_store:
        salt = accepted.salt if accepted is not None else secrets.token_bytes(32)
    else:
        with state.store.session() as session:
            salt = fingerprint_salt(session)

    quiet = json_output or (sarif is not None and str(sarif) == "-")
    workers = jobs or len(os.sched_getaffinity(0))
    if workers > 1 and not no_store:
        # Worker processes are forked; close pooled connections first so no
        # child inherits a live database socket.
        state.store.engine.dispose()
    result = _scan_with_progress(paths, ruleset, salt, git, workers, show=not quiet)
    if accepted is not None:
        accepted.mark(result.findings)
    new_count = len(result.new_findings)

    if not no_store:
        with state.store.session() as session:
            record_scan(
                session,
                result.findings,
                result.stats,
                actor=operator_actor(),
                roots=[str(path) for path in paths],
            )

    if sarif is not None:
        document = json.dumps(sarif_report(result), indent=2)
        if str(sarif) == "-":
            typer.echo(document)
        else:
            sarif.write_text(document + "\n", encoding="utf-8")
    if html is not None:
        html.write_text(html_report(result), encoding="utf-8")
    if json_output:
        print_json(json_report(result))
    elif not quiet:
        print_table(result, console)

    if update_baseline and accepted is not None and baseline is not None:
        accepted.replace_with(result.findings)
        write_baseline(baseline, accepted)
        if not quiet:
            error_console.print(
                f"Baseline {baseline} now accepts {len(accepted.entries)} findings.",
                markup=False,
            )
        if not fail_on_new:
            return
    if new_count:
        raise typer.Exit(EXIT_NEW_FINDINGS)


def _scan_with_progress(
    paths: list[Path],
    ruleset: "RuleSet",
    salt: bytes,
    git: bool,
    jobs: int,
    show: bool,
) -> "ScanResult":
    """Run the scan with a progress line on a terminal (files, blobs, MB read)."""
    from rich.progress import Progress, SpinnerColumn, TextColumn, TimeElapsedColumn

    from keysteward.discovery.scan import run_scan

    if not (show and error_console.is_terminal):
        return run_scan(paths, ruleset, salt, git=git, jobs=jobs)
    with Progress(
        SpinnerColumn(),
        TextColumn("{task.description}"),
        TimeElapsedColumn(),
        console=error_console,
        transient=True,
    ) as progress:
        task = progress.add_task("scanning", total=None)

        def update(stats: "ScanStats") -> None:
            progress.update(
                task,
                description=(
                    f"scanning: {stats.files} files, {stats.blobs} git blobs, "
                    f"{stats.bytes / 1_000_000:.1f} MB"
                ),
            )

        return run_scan(paths, ruleset, salt, git=git, progress=update, jobs=jobs)
