"""Evidence for auditors: one row per review item, as CSV or printable HTML.

Each row carries the scope snapshot time, the reviewer, the decision and
its time, and the proof that the decision was carried out: the id of the
``review.apply`` event in the event log and the state after the change.
"""

import csv
import io
import json
from datetime import datetime
from pathlib import Path
from typing import Any

from jinja2 import Environment, PackageLoader, select_autoescape

from keysteward import __version__
from keysteward.clock import as_utc, utcnow
from keysteward.errors import InvalidInputError
from keysteward.reviews.models import ReviewCampaign

COLUMNS = (
    "campaign",
    "snapshot_at",
    "item",
    "subject_type",
    "subject",
    "reviewee",
    "reviewer",
    "facts",
    "recommendation",
    "recommendation_reason",
    "decision",
    "decided_by",
    "decided_at",
    "comment",
    "flagged",
    "applied_at",
    "proof_event_id",
    "state_after",
)


def _iso(value: datetime | None) -> str:
    value = as_utc(value)
    return "" if value is None else value.isoformat(timespec="seconds")


def evidence_rows(campaign: ReviewCampaign) -> list[dict[str, Any]]:
    """Return one evidence row per item of ``campaign``, in item order."""
    rows = []
    for item in campaign.items:
        proof = item.proof or {}
        rows.append(
            {
                "campaign": campaign.name,
                "snapshot_at": _iso(campaign.started_at),
                "item": item.id,
                "subject_type": item.subject_type,
                "subject": item.subject_label,
                "reviewee": item.reviewee or "",
                "reviewer": item.reviewer,
                "facts": json.dumps(item.facts or {}, sort_keys=True),
                "recommendation": item.recommendation,
                "recommendation_reason": item.recommendation_reason,
                "decision": item.decision or "",
                "decided_by": item.decided_by or "",
                "decided_at": _iso(item.decided_at),
                "comment": item.comment or "",
                "flagged": "yes" if item.flagged else "no",
                "applied_at": _iso(item.applied_at),
                "proof_event_id": proof.get("event_id", ""),
                "state_after": (
                    json.dumps(proof["state_after"], sort_keys=True)
                    if "state_after" in proof
                    else ""
                ),
            }
        )
    return rows


def render_csv(campaign: ReviewCampaign) -> str:
    """Return the evidence as CSV text with a header row."""
    buffer = io.StringIO()
    writer = csv.DictWriter(buffer, fieldnames=COLUMNS, lineterminator="\n")
    writer.writeheader()
    writer.writerows(evidence_rows(campaign))
    return buffer.getvalue()


def render_html(campaign: ReviewCampaign, generated_at: datetime | None = None) -> str:
    """Return the evidence as one printable HTML page with inline CSS."""
    environment = Environment(
        loader=PackageLoader("keysteward.reviews", "templates"),
        autoescape=select_autoescape(default=True, default_for_string=True),
        trim_blocks=True,
        lstrip_blocks=True,
    )
    rows = evidence_rows(campaign)
    decided = sum(1 for row in rows if row["decision"])
    return environment.get_template("evidence.html.j2").render(
        campaign=campaign,
        snapshot_at=_iso(campaign.started_at),
        closed_at=_iso(campaign.closed_at),
        rows=rows,
        decided=decided,
        generated_at=_iso(generated_at or utcnow()),
        version=__version__,
    )


def write_text(path: Path, text: str) -> None:
    """Write ``text`` to ``path``; raise InvalidInputError naming the path if not."""
    try:
        path.write_text(text, encoding="utf-8")
    except OSError as exc:
        raise InvalidInputError(
            f"cannot write {str(path)!r} ({exc.strerror}); choose a writable path"
        ) from None
