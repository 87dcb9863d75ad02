"""Offboarding one person: mark them departed and deal with what they leave.

``offboard_person`` works inside the caller's transaction, so a failure
anywhere leaves the store as it was, and a dry run is the same call followed
by a rollback. Every change it makes is recorded as an event.
"""

from dataclasses import asdict, dataclass, field
from datetime import UTC, date, datetime, time, timedelta
from typing import Any

from sqlalchemy import delete, func, or_, select
from sqlalchemy.orm import Session

from keysteward.authz.permissions import PrincipalKind
from keysteward.authz.services import remove_principal_grants
from keysteward.clock import as_utc, utcnow
from keysteward.credentials.models import Credential, CredentialKind, CredentialStatus
from keysteward.errors import InvalidInputError, NotFoundError
from keysteward.events.models import Event
from keysteward.events.services import record_event
from keysteward.identities.models import Person, PersonStatus, ServiceAccount
from keysteward.offboarding.rotation import request_rotation
from keysteward.operators.models import WebSession
from keysteward.reviews.models import CampaignStatus, ReviewCampaign, ReviewItem
from keysteward.systems.models import System
from keysteward.tokens.models import ApiToken
from keysteward.tokens.principals import PrincipalType
from keysteward.tokens.services import revoke_api_token
from keysteward.vault.models import Secret
from keysteward.vault.services import READ_ACTION

# Secret reads this far back before the departure count as exposure.
READ_LOOKBACK_DAYS = 90
OFFBOARDING_ORIGIN = "offboarding"
# The attribute that marks a record whose owner left with no successor.
NEEDS_OWNER = "needs_owner"
LIVE_STATUSES = (CredentialStatus.ACTIVE, CredentialStatus.INACTIVE)


@dataclass
class OffboardingReport:
    """The records found and the changes made while offboarding one person."""

    person: dict[str, Any]
    successor: dict[str, Any] | None
    departed_on: date
    dry_run: bool = False
    tokens_revoked: list[dict[str, Any]] = field(default_factory=list)
    dashboard_sessions_ended: int = 0
    credentials: list[dict[str, Any]] = field(default_factory=list)
    service_accounts: list[dict[str, Any]] = field(default_factory=list)
    systems: list[dict[str, Any]] = field(default_factory=list)
    secrets: list[dict[str, Any]] = field(default_factory=list)
    secrets_read: list[dict[str, Any]] = field(default_factory=list)
    rotations_queued: list[dict[str, Any]] = field(default_factory=list)
    # keysteward never rotates a person's password, so each entry names the
    # step a person takes instead.
    passwords_not_rotated: list[dict[str, Any]] = field(default_factory=list)
    role_assignments_removed: list[dict[str, Any]] = field(default_factory=list)
    review_items_reassigned: list[dict[str, Any]] = field(default_factory=list)
    needs_owner: list[str] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def find_person(session: Session, email: str) -> Person:
    """Return the person with ``email`` (any case), or raise NotFoundError."""
    person = session.scalar(
        select(Person).where(func.lower(Person.email) == email.strip().lower())
    )
    if person is None:
        raise NotFoundError(
            f"person {email!r} not found; `keysteward people list` shows the "
            "people in the store (import the HR roster to add them)"
        )
    return person


def offboard_person(
    session: Session,
    email: str,
    *,
    actor: str,
    successor_email: str | None = None,
    as_of: date | None = None,
) -> OffboardingReport:
    """Mark the person departed and hand over, revoke and rotate what they had.

    Raises NotFoundError for an unknown person or successor, and
    InvalidInputError when the successor is the person or has left too.
    """
    person = find_person(session, email)
    successor = _checked_successor(session, person, successor_email)
    departed_on = as_of or person.departed_on or utcnow().date()
    report = OffboardingReport(
        person=_person_summary(person),
        successor=_person_summary(successor) if successor else None,
        departed_on=departed_on,
    )
    _mark_departed(session, person, departed_on, actor)
    _revoke_tokens(session, person, report, actor)
    _end_dashboard_sessions(session, person, report, actor)
    report.role_assignments_removed = remove_principal_grants(
        session, PrincipalKind.PERSON, person.id, actor=actor
    )
    reads = _recent_reads(session, person, departed_on)
    held = _handle_credentials(session, person, successor, report, actor)
    _handle_secrets(session, person, successor, report, actor, reads)
    _handle_service_accounts(session, person, successor, report, actor)
    _handle_systems(session, person, successor, report, actor)
    _queue_rotations(session, person, held, report, actor)
    _reassign_reviews(session, person, successor, report, actor)
    record_event(
        session,
        actor=actor,
        action="person.offboard",
        target_type="person",
        target_id=person.id,
        details={
            "successor": successor.email if successor else None,
            "departed_on": departed_on.isoformat(),
            "tokens_revoked": len(report.tokens_revoked),
            "dashboard_sessions_ended": report.dashboard_sessions_ended,
            "credentials": len(report.credentials),
            "service_accounts": len(report.service_accounts),
            "rotations_queued": len(report.rotations_queued),
            "role_assignments_removed": len(report.role_assignments_removed),
            "needs_owner": len(report.needs_owner),
        },
    )
    session.flush()
    return report


def _checked_successor(
    session: Session, person: Person, successor_email: str | None
) -> Person | None:
    if successor_email is None:
        return None
    successor = find_person(session, successor_email)
    if successor.id == person.id:
        raise InvalidInputError(
            f"successor {successor_email!r} is the person being offboarded; "
            "name someone else or leave out --successor"
        )
    if successor.status == PersonStatus.DEPARTED:
        raise InvalidInputError(
            f"successor {successor_email!r} has left the company; name a current "
            "person or leave out --successor to flag the records as needing an owner"
        )
    return successor


def _person_summary(person: Person) -> dict[str, Any]:
    return {"id": person.id, "name": person.name, "email": person.email}


def _mark_departed(
    session: Session, person: Person, departed_on: date, actor: str
) -> None:
    was = {"status": person.status, "departed_on": person.departed_on}
    person.status = PersonStatus.DEPARTED
    person.departed_on = departed_on
    record_event(
        session,
        actor=actor,
        action="person.depart",
        target_type="person",
        target_id=person.id,
        details={
            "departed_on": departed_on.isoformat(),
            "previous_status": was["status"],
        },
    )


def _revoke_tokens(
    session: Session, person: Person, report: OffboardingReport, actor: str
) -> None:
    # NOTE: access tokens already bought with these API tokens are stateless,
    # so they stay valid until they expire (15 minutes by default). Marking
    # the person departed makes every later API token check fail.
    query = select(ApiToken).where(
        ApiToken.principal_type == PrincipalType.PERSON,
        ApiToken.principal_id == person.id,
        ApiToken.revoked_at.is_(None),
    )
    for token in session.scalars(query.order_by(ApiToken.id)):
        revoke_api_token(session, token.id, actor=actor)
        report.tokens_revoked.append(
            {"id": token.id, "hint": token.hint, "description": token.description}
        )


def _end_dashboard_sessions(
    session: Session, person: Person, report: OffboardingReport, actor: str
) -> None:
    owned = WebSession.person_id == person.id
    ended = len(session.scalars(select(WebSession.id).where(owned)).all())
    session.execute(delete(WebSession).where(owned))
    report.dashboard_sessions_ended = ended
    if ended:
        record_event(
            session,
            actor=actor,
            action="person.sessions.end",
            target_type="person",
            target_id=person.id,
            details={"sessions": ended},
        )


def _recent_reads(
    session: Session, person: Person, departed_on: date
) -> dict[str, tuple[int, datetime]]:
    """Return secret name -> (allowed reads, last read) in the lookback window."""
    end = datetime.combine(departed_on + timedelta(days=1), time(), tzinfo=UTC)
    start = end - timedelta(days=READ_LOOKBACK_DAYS + 1)
    query = (
        select(Event.target_id, func.count(), func.max(Event.occurred_at))
        .where(
            Event.action == READ_ACTION,
            Event.outcome == "allowed",
            Event.actor == f"{PrincipalType.PERSON}:{person.email}",
            Event.occurred_at >= start,
            Event.occurred_at < end,
        )
        .group_by(Event.target_id)
    )
    return {
        str(name): (int(count), as_utc(last) or start)
        for name, count, last in session.execute(query)
    }


def _relations(credential: Credential, person: Person) -> list[str]:
    relations = []
    if credential.created_by_id == person.id:
        relations.append("created")
    if credential.owner_id == person.id:
        relations.append("owns")
    if credential.holder_person_id == person.id:
        relations.append("holds")
    return relations


def _handle_credentials(
    session: Session,
    person: Person,
    successor: Person | None,
    report: OffboardingReport,
    actor: str,
) -> list[Credential]:
    """List the person's credentials, move owned ones; return the held live ones."""
    query = select(Credential).where(
        or_(
            Credential.created_by_id == person.id,
            Credential.owner_id == person.id,
            Credential.holder_person_id == person.id,
        )
    )
    held: list[Credential] = []
    for credential in session.scalars(query.order_by(Credential.id)):
        relations = _relations(credential, person)
        entry: dict[str, Any] = {
            "id": credential.id,
            "name": credential.name,
            "system": credential.system.name if credential.system else None,
            "status": credential.status,
            "relations": relations,
            "new_owner": None,
        }
        live = credential.status in LIVE_STATUSES
        if "owns" in relations and live:
            entry["new_owner"] = _hand_over(
                session, credential, "credential", successor, report, actor
            )
        if "holds" in relations and live:
            held.append(credential)
        report.credentials.append(entry)
    return held


def _hand_over(
    session: Session,
    record: Credential | ServiceAccount | System | Secret,
    kind: str,
    successor: Person | None,
    report: OffboardingReport,
    actor: str,
) -> str | None:
    """Give ``record`` to the successor, or flag it as needing an owner."""
    label = f"{kind} {record.name}"
    if successor is None:
        if isinstance(record, Secret):
            report.needs_owner.append(label)
            return None
        record.attributes = {**(record.attributes or {}), NEEDS_OWNER: True}
        report.needs_owner.append(label)
        action, details = f"{kind}.owner.flag", {"reason": "owner departed"}
    else:
        record.owner_id = successor.id
        action, details = f"{kind}.owner.transfer", {"to": successor.email}
    record_event(
        session,
        actor=actor,
        action=action,
        target_type=kind,
        target_id=record.id,
        details=details,
    )
    return successor.email if successor else None


def _handle_secrets(
    session: Session,
    person: Person,
    successor: Person | None,
    report: OffboardingReport,
    actor: str,
    reads: dict[str, tuple[int, datetime]],
) -> None:
    owned = session.scalars(
        select(Secret).where(Secret.owner_id == person.id).order_by(Secret.name)
    )
    for secret in owned:
        new_owner = _hand_over(session, secret, "secret", successor, report, actor)
        report.secrets.append({"name": secret.name, "new_owner": new_owner})
    if not reads:
        return
    linked = dict(
        session.execute(
            select(Secret.name, Secret.credential_id).where(Secret.name.in_(reads))
        ).all()
    )
    for name in sorted(reads):
        count, last = reads[name]
        report.secrets_read.append(
            {
                "secret": name,
                "reads": count,
                "last_read_at": last,
                "credential_id": linked.get(name),
            }
        )


def _handle_service_accounts(
    session: Session,
    person: Person,
    successor: Person | None,
    report: OffboardingReport,
    actor: str,
) -> None:
    query = select(ServiceAccount).where(ServiceAccount.owner_id == person.id)
    for account in session.scalars(query.order_by(ServiceAccount.name)):
        new_owner = _hand_over(
            session, account, "service_account", successor, report, actor
        )
        report.service_accounts.append(
            {"name": account.name, "status": account.status, "new_owner": new_owner}
        )


def _handle_systems(
    session: Session,
    person: Person,
    successor: Person | None,
    report: OffboardingReport,
    actor: str,
) -> None:
    query = select(System).where(System.owner_id == person.id)
    for system in session.scalars(query.order_by(System.name)):
        new_owner = _hand_over(session, system, "system", successor, report, actor)
        report.systems.append({"name": system.name, "new_owner": new_owner})


def _queue_rotations(
    session: Session,
    person: Person,
    held: list[Credential],
    report: OffboardingReport,
    actor: str,
) -> None:
    reasons: dict[int, str] = {
        credential.id: f"holder {person.email} departed" for credential in held
    }
    read_ids = [
        entry["credential_id"]
        for entry in report.secrets_read
        if entry["credential_id"] is not None
    ]
    for credential_id in read_ids:
        reasons.setdefault(
            credential_id, f"secret read by {person.email} before departure"
        )
    for credential_id in sorted(reasons):
        credential = session.get(Credential, credential_id)
        if credential is None or credential.status not in LIVE_STATUSES:
            continue
        if _is_person_password(credential):
            _list_password(credential, person, report)
            continue
        queued = request_rotation(
            session,
            credential,
            reason=reasons[credential_id],
            origin=OFFBOARDING_ORIGIN,
            actor=actor,
        )
        report.rotations_queued.append(
            {
                "credential_id": credential.id,
                "name": credential.name,
                "reason": queued.reason,
                "queued_as": queued.kind,
                "queued_id": queued.id,
            }
        )
    for entry in report.secrets_read:
        entry["rotation_queued"] = any(
            row["credential_id"] == entry["credential_id"]
            for row in report.rotations_queued
        )


def _is_person_password(credential: Credential) -> bool:
    return (
        credential.kind == CredentialKind.PASSWORD
        and credential.holder_person_id is not None
    )


def _list_password(
    credential: Credential, person: Person, report: OffboardingReport
) -> None:
    holder = credential.holder_person
    own = credential.holder_person_id == person.id
    report.passwords_not_rotated.append(
        {
            "credential_id": credential.id,
            "name": credential.name,
            "holder": holder.email if holder else None,
            "action": "disable the login" if own else "change on next login",
        }
    )


def _reassign_reviews(
    session: Session,
    person: Person,
    successor: Person | None,
    report: OffboardingReport,
    actor: str,
) -> None:
    """Give the person's undecided review items to the successor or fallback."""
    query = (
        select(ReviewItem)
        .join(ReviewCampaign, ReviewItem.campaign_id == ReviewCampaign.id)
        .where(
            ReviewCampaign.status == CampaignStatus.OPEN,
            ReviewItem.decision.is_(None),
            func.lower(ReviewItem.reviewer) == person.email.lower(),
        )
        .order_by(ReviewItem.id)
    )
    for item in session.scalars(query):
        new_reviewer = successor.email if successor else None
        if new_reviewer is None or new_reviewer == item.reviewee:
            new_reviewer = item.campaign.fallback_reviewer
        if new_reviewer is None or new_reviewer == item.reviewee:
            report.needs_owner.append(f"review item {item.id}")
            continue
        item.reviewer = new_reviewer
        record_event(
            session,
            actor=actor,
            action="review.reassign",
            target_type="review_item",
            target_id=item.id,
            details={"from": person.email, "to": new_reviewer},
        )
        report.review_items_reassigned.append(
            {"item": item.id, "subject": item.subject_label, "to": new_reviewer}
        )
