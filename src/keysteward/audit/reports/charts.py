"""Server-rendered SVG charts for the HTML report.

Each function returns a complete ``<svg>`` element as Markup. Every label
passes through ``markupsafe.escape``, because credential, system and owner
names come from imported files.
"""

from collections import Counter, defaultdict
from collections.abc import Iterable

from markupsafe import Markup, escape

from keysteward.audit.results import RankedFinding

SEVERITY_COLORS = {
    "critical": "#9b1c1c",
    "high": "#e0523a",
    "medium": "#e8a33d",
    "low": "#6b9bd1",
}
SEVERITIES = ("critical", "high", "medium", "low")
# Upper bound (days, inclusive) and label of each age bucket.
AGE_BUCKETS = (
    (30, "0-30d"),
    (90, "31-90d"),
    (180, "91-180d"),
    (365, "181d-1y"),
    (730, "1-2y"),
    (1095, "2-3y"),
    (None, ">3y"),
)
BAR_LABEL_WIDTH = 170
BAR_AREA_WIDTH = 190
BAR_ROW_HEIGHT = 24
FONT = "font-family='system-ui, sans-serif' font-size='12' fill='#1f2933'"


def bucket_ages(ages: Iterable[int]) -> list[tuple[str, int]]:
    """Return (label, count) per age bucket, youngest first."""
    counts = [0] * len(AGE_BUCKETS)
    for age in ages:
        for index, (upper, _label) in enumerate(AGE_BUCKETS):
            if upper is None or age <= upper:
                counts[index] += 1
                break
    return [
        (label, count)
        for (_upper, label), count in zip(AGE_BUCKETS, counts, strict=True)
    ]


def age_histogram(ages: Iterable[int], rotation_days: int = 90) -> Markup:
    """Draw a column chart of credential ages; buckets past the policy are red."""
    buckets = bucket_ages(ages)
    width, height, top, bottom, left = 460, 220, 24, 36, 34
    plot_height = height - top - bottom
    peak = max((count for _label, count in buckets), default=0) or 1
    slot = (width - left - 10) / len(buckets)

    parts = [_svg_open(width, height, "Credential age since last rotation")]
    parts.append(_axis(left, top, plot_height, width - 10, peak))
    lower = 0
    for index, ((label, count), (upper, _)) in enumerate(
        zip(buckets, AGE_BUCKETS, strict=True)
    ):
        color = "#e0523a" if lower >= rotation_days else "#4c8c6a"
        bar_height = plot_height * count / peak
        x = left + index * slot + slot * 0.15
        parts.append(
            _column(x, top + plot_height, slot * 0.7, bar_height, color, label, count)
        )
        lower = (upper or lower) + 1
    parts.append("</svg>")
    # Every interpolated name above went through escape().
    return Markup("".join(parts))  # noqa: S704


def _column(
    x: float,
    base: float,
    width: float,
    height: float,
    color: str,
    label: str,
    count: int,
) -> str:
    """Return one histogram column with its count above and its label below."""
    middle = x + width / 2
    return (
        f"<rect x='{x:.1f}' y='{base - height:.1f}' width='{width:.1f}' "
        f"height='{height:.1f}' rx='3' fill='{color}'>"
        f"<title>{escape(label)}: {count}</title></rect>"
        f"<text x='{middle:.1f}' y='{base - height - 4:.1f}' text-anchor='middle' "
        f"{FONT}>{count}</text>"
        f"<text x='{middle:.1f}' y='{base + 16:.1f}' text-anchor='middle' "
        f"{FONT}>{escape(label)}</text>"
    )


def findings_by(
    findings: Iterable[RankedFinding], attribute: str, limit: int = 10
) -> list[tuple[str, dict[str, int]]]:
    """Return the ``limit`` names with most findings, with counts per severity."""
    per_name: dict[str, Counter[str]] = defaultdict(Counter)
    for finding in findings:
        name = getattr(finding, attribute) or "no owner"
        per_name[name][finding.severity] += 1
    ranked = sorted(
        per_name.items(),
        key=lambda item: (
            [-item[1].get(severity, 0) for severity in SEVERITIES[:2]],
            -sum(item[1].values()),
            item[0],
        ),
    )
    return [(name, dict(counts)) for name, counts in ranked[:limit]]


def stacked_bars(rows: list[tuple[str, dict[str, int]]], title: str) -> Markup:
    """Draw horizontal bars, one per name, stacked by severity."""
    width = BAR_LABEL_WIDTH + BAR_AREA_WIDTH + 50
    height = 30 + BAR_ROW_HEIGHT * max(len(rows), 1) + 28
    peak = max((sum(counts.values()) for _name, counts in rows), default=0) or 1

    parts = [_svg_open(width, height, title)]
    if not rows:
        parts.append(f"<text x='10' y='40' {FONT}>No findings.</text>")
    for index, (name, counts) in enumerate(rows):
        parts.append(_bar_row(20 + index * BAR_ROW_HEIGHT, name, counts, peak))
    parts.append(_legend(10, height - 14))
    parts.append("</svg>")
    # Every interpolated name above went through escape().
    return Markup("".join(parts))  # noqa: S704


def _bar_row(y: int, name: str, counts: dict[str, int], peak: int) -> str:
    """Return one labelled bar, its segments ordered from critical to low."""
    shown = name if len(name) <= 19 else name[:18] + "..."
    parts = [
        f"<text x='{BAR_LABEL_WIDTH - 8}' y='{y + 15}' text-anchor='end' {FONT}>"
        f"<title>{escape(name)}</title>{escape(shown)}</text>"
    ]
    x = float(BAR_LABEL_WIDTH)
    for severity in SEVERITIES:
        count = counts.get(severity, 0)
        if not count:
            continue
        bar_width = BAR_AREA_WIDTH * count / peak
        parts.append(
            f"<rect x='{x:.1f}' y='{y + 3}' width='{bar_width:.1f}' height='18' "
            f"fill='{SEVERITY_COLORS[severity]}'><title>{escape(name)}: "
            f"{count} {severity}</title></rect>"
        )
        x += bar_width
    parts.append(
        f"<text x='{x + 6:.1f}' y='{y + 16}' {FONT}>{sum(counts.values())}</text>"
    )
    return "".join(parts)


def _svg_open(width: int, height: int, title: str) -> str:
    return (
        f"<svg viewBox='0 0 {width} {height}' "
        f"width='100%' role='img' aria-label='{escape(title)}'>"
        f"<title>{escape(title)}</title>"
    )


def _axis(left: int, top: int, plot_height: int, right: int, peak: int) -> str:
    base = top + plot_height
    return (
        f"<line x1='{left}' y1='{base}' x2='{right}' y2='{base}' stroke='#9aa5b1'/>"
        f"<text x='{left - 6}' y='{top + 4}' text-anchor='end' {FONT}>{peak}</text>"
        f"<text x='{left - 6}' y='{base}' text-anchor='end' {FONT}>0</text>"
    )


def _legend(x: int, y: int) -> str:
    parts = []
    for severity in SEVERITIES:
        parts.append(
            f"<rect x='{x}' y='{y - 10}' width='12' height='12' "
            f"fill='{SEVERITY_COLORS[severity]}'/>"
            f"<text x='{x + 16}' y='{y}' {FONT}>{severity}</text>"
        )
        x += 90
    return "".join(parts)
