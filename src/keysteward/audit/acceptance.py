"""Accepting a finding's risk, so later runs keep it out of --fail-on."""

from typing import Any

from sqlalchemy.orm import Session

from keysteward.clock import utcnow
from keysteward.errors import InvalidInputError, NotFoundError
from keysteward.events.services import record_event
from keysteward.findings.models import Finding, FindingStatus

# Maximum length of the reason kept with an accepted finding, in characters.
MAX_REASON_LENGTH = 500


def accept_finding(
    session: Session, finding_id: int, reason: str, actor: str
) -> Finding:
    """Mark an open finding accepted, with the reason, and record an event.

    Later runs that find the same problem on the same credential carry the
    acceptance over. Raises NotFoundError for an unknown id and
    InvalidInputError for an empty reason or a finding that is not open.
    """
    text = reason.strip()
    if not text:
        raise InvalidInputError(
            "missing --reason: say why the risk is accepted, for the next reviewer"
        )
    if len(text) > MAX_REASON_LENGTH:
        raise InvalidInputError(
            f"invalid --reason: {len(text)} characters, the maximum is "
            f"{MAX_REASON_LENGTH}; shorten it"
        )
    finding = session.get(Finding, finding_id)
    if finding is None:
        raise NotFoundError(
            f"finding {finding_id} not found; `keysteward findings list --json` "
            "shows the ids of open findings"
        )
    if finding.status != FindingStatus.OPEN:
        raise InvalidInputError(
            f"finding {finding_id} is {finding.status}; only open findings can be "
            "accepted (run `keysteward findings list` for the current ones)"
        )

    acceptance: dict[str, Any] = {
        "reason": text,
        "by": actor,
        "at": utcnow().isoformat(),
    }
    finding.status = FindingStatus.ACCEPTED
    finding.evidence = {**finding.evidence, "acceptance": acceptance}
    record_event(
        session,
        actor=actor,
        action="finding.accept",
        target_type="finding",
        target_id=finding.id,
        details={"rule": finding.rule, "credential_id": finding.credential_id},
    )
    return finding
