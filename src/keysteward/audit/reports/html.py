"""The self-contained HTML audit report.

One file with inline CSS and inline SVG: no scripts, fonts, images or
stylesheets are fetched, so it can be mailed or archived as it is.
"""

from datetime import datetime
from pathlib import Path

from jinja2 import Environment, PackageLoader, select_autoescape

from keysteward import __version__
from keysteward.audit.reports import RANKING_EXPLANATION
from keysteward.audit.reports.charts import (
    SEVERITY_COLORS,
    age_histogram,
    findings_by,
    stacked_bars,
)
from keysteward.audit.results import AuditSummary, RankedFinding
from keysteward.clock import utcnow
from keysteward.errors import InvalidInputError


def _environment() -> Environment:
    return Environment(
        loader=PackageLoader("keysteward.audit.reports", "templates"),
        autoescape=select_autoescape(default=True, default_for_string=True),
        trim_blocks=True,
        lstrip_blocks=True,
    )


def render_html(
    findings: list[RankedFinding],
    summary: AuditSummary,
    rotation_days: int = 90,
    generated_at: datetime | None = None,
    charted: list[RankedFinding] | None = None,
) -> str:
    """Return the report page for one audit run.

    ``findings`` are the rows listed. ``charted`` (default: the same list)
    are the findings that the per-system and per-owner charts count, so a
    report limited to the first rows can still chart the whole run.
    """
    charted = findings if charted is None else charted
    template = _environment().get_template("report.html.j2")
    return template.render(
        summary=summary,
        findings=findings,
        colors=SEVERITY_COLORS,
        ranking=RANKING_EXPLANATION,
        age_chart=age_histogram(summary.credential_ages_days, rotation_days),
        system_chart=stacked_bars(
            findings_by(charted, "system"), "Findings per system"
        ),
        owner_chart=stacked_bars(findings_by(charted, "owner"), "Findings per owner"),
        generated_at=(generated_at or utcnow()).strftime("%Y-%m-%d %H:%M UTC"),
        version=__version__,
    )


def write_html(path: Path, page: str) -> None:
    """Write the page to ``path``; raises InvalidInputError if it cannot."""
    try:
        path.write_text(page, encoding="utf-8")
    except OSError as exc:
        raise InvalidInputError(
            f"failed to write the HTML report to {path}: {exc.strerror}; "
            "pass --html with a writable file path"
        ) from None
