"""The offboarding report as a Rich table, JSON data or one HTML file."""

from datetime import datetime
from pathlib import Path
from typing import Any

from jinja2 import Environment, PackageLoader, select_autoescape
from rich.console import Console
from rich.table import Table

from keysteward import __version__
from keysteward.clock import utcnow
from keysteward.errors import InvalidInputError
from keysteward.offboarding.services import OffboardingReport


def print_report(report: OffboardingReport, console: Console) -> None:
    """Print the report as a heading and one table per section."""
    person = report.person
    mode = " (dry run: nothing was changed)" if report.dry_run else ""
    verb = "Would offboard" if report.dry_run else "Offboarded"
    successor = report.successor["email"] if report.successor else "none"
    console.print(
        f"{verb} {person['name']} <{person['email']}> as of "
        f"{report.departed_on.isoformat()}; successor: {successor}{mode}"
    )
    console.print(f"Dashboard sessions ended: {report.dashboard_sessions_ended}")
    for title, columns, rows in _sections(report):
        table = Table(*columns, title=f"{title} ({len(rows)})", title_justify="left")
        for row in rows:
            table.add_row(*row)
        console.print(table)
    if report.needs_owner:
        console.print(
            f"{len(report.needs_owner)} record(s) need an owner: "
            + ", ".join(report.needs_owner)
        )


def _sections(
    report: OffboardingReport,
) -> list[tuple[str, list[str], list[list[str]]]]:
    def text(value: Any) -> str:
        if isinstance(value, datetime):
            return value.isoformat(timespec="minutes")
        return "" if value is None else str(value)

    return [
        (
            "API tokens revoked",
            ["id", "hint", "description"],
            [
                [text(token["id"]), text(token["hint"]), text(token["description"])]
                for token in report.tokens_revoked
            ],
        ),
        (
            "Role assignments removed",
            ["via", "name", "expires"],
            [
                [removed["via"], removed["name"], text(removed["expires_at"])]
                for removed in report.role_assignments_removed
            ],
        ),
        (
            "Credentials",
            ["id", "name", "system", "status", "relation", "new owner"],
            [
                [
                    text(credential["id"]),
                    credential["name"],
                    text(credential["system"]),
                    credential["status"],
                    ", ".join(credential["relations"]),
                    text(credential["new_owner"]),
                ]
                for credential in report.credentials
            ],
        ),
        (
            "Service accounts",
            ["name", "status", "new owner"],
            [
                [account["name"], account["status"], text(account["new_owner"])]
                for account in report.service_accounts
            ],
        ),
        (
            "Systems",
            ["name", "new owner"],
            [[system["name"], text(system["new_owner"])] for system in report.systems],
        ),
        (
            "Vault secrets owned",
            ["name", "new owner"],
            [[secret["name"], text(secret["new_owner"])] for secret in report.secrets],
        ),
        (
            "Secrets read in the last 90 days",
            ["secret", "reads", "last read", "rotation queued"],
            [
                [
                    read["secret"],
                    text(read["reads"]),
                    text(read["last_read_at"]),
                    "yes" if read.get("rotation_queued") else "no",
                ]
                for read in report.secrets_read
            ],
        ),
        (
            "Review items reassigned",
            ["item", "subject", "new reviewer"],
            [
                [text(moved["item"]), moved["subject"], moved["to"]]
                for moved in report.review_items_reassigned
            ],
        ),
        (
            "Rotations queued",
            ["credential", "name", "reason", "queued as"],
            [
                [
                    text(queued["credential_id"]),
                    queued["name"],
                    queued["reason"],
                    f"{queued['queued_as']} {queued['queued_id']}",
                ]
                for queued in report.rotations_queued
            ],
        ),
        (
            "Passwords of people (never rotated)",
            ["credential", "name", "holder", "to do"],
            [
                [
                    text(password["credential_id"]),
                    password["name"],
                    text(password["holder"]),
                    password["action"],
                ]
                for password in report.passwords_not_rotated
            ],
        ),
    ]


def render_html(report: OffboardingReport, generated_at: datetime | None = None) -> str:
    """Return the report as one HTML page with inline CSS and no scripts."""
    environment = Environment(
        loader=PackageLoader("keysteward.offboarding", "templates"),
        autoescape=select_autoescape(default=True, default_for_string=True),
        trim_blocks=True,
        lstrip_blocks=True,
    )
    template = environment.get_template("report.html.j2")
    return template.render(
        report=report,
        sections=_sections(report),
        generated_at=(generated_at or utcnow()).isoformat(timespec="seconds"),
        version=__version__,
    )


def write_html(report: OffboardingReport, path: Path) -> None:
    """Write the HTML report to ``path``; raise InvalidInputError if it cannot."""
    try:
        path.write_text(render_html(report), encoding="utf-8")
    except OSError as exc:
        raise InvalidInputError(
            f"cannot write the HTML report to {str(path)!r} ({exc.strerror}); "
            "choose a writable path"
        ) from None
