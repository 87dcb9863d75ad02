"""Loading the vault reads of people who have left, for the departure rules.

A departed person who read a credential's secret shortly before leaving
may still know it, so the credential needs rotating unless it was rotated
after that read.
"""

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from keysteward.audit.context import PersonView
from keysteward.clock import as_utc
from keysteward.events.models import Event
from keysteward.vault.models import Secret

# Reads this many days before a person's departure count.
READ_LOOKBACK_DAYS = 90
READ_ACTION = "secret.read"
PERSON_ACTOR_PREFIX = "person:"


@dataclass(frozen=True, slots=True)
class DepartedReader:
    """A departed person's latest read of one credential's vault secret."""

    person: PersonView
    secret: str
    last_read_at: datetime


def load_departed_readers(
    session: Session, people: Mapping[int, PersonView], as_of: datetime
) -> dict[int, list[DepartedReader]]:
    """Return credential id -> departed readers of its secret, as of ``as_of``."""
    departed = {
        person.email: person
        for person in people.values()
        if person.departed_by(as_of.date())
    }
    if not departed:
        return {}

    reads = _departed_reads(session, departed, as_of)
    if not reads:
        return {}

    names = sorted({name for _, name, _ in reads})
    linked = dict(
        session.execute(
            select(Secret.name, Secret.credential_id).where(
                Secret.name.in_(names), Secret.credential_id.is_not(None)
            )
        ).all()
    )
    readers: dict[int, list[DepartedReader]] = {}
    for person, name, last in reads:
        credential_id = linked.get(name)
        if credential_id is None or not _within_lookback(person, last, as_of):
            continue
        readers.setdefault(credential_id, []).append(DepartedReader(person, name, last))
    return readers


def _departed_reads(
    session: Session, departed: dict[str, PersonView], as_of: datetime
) -> list[tuple[PersonView, str, datetime]]:
    """Return (person, secret name, last allowed read) for departed readers."""
    oldest = min(
        (p.departed_on for p in departed.values() if p.departed_on is not None),
        default=as_of.date(),
    )
    since = datetime.combine(oldest, datetime.min.time(), tzinfo=as_of.tzinfo)
    since -= timedelta(days=READ_LOOKBACK_DAYS)
    query = (
        select(Event.actor, Event.target_id, func.max(Event.occurred_at))
        .where(
            Event.action == READ_ACTION,
            Event.outcome == "allowed",
            Event.actor.startswith(PERSON_ACTOR_PREFIX),
            Event.occurred_at >= since,
            Event.occurred_at <= as_of,
        )
        .group_by(Event.actor, Event.target_id)
    )
    reads = []
    for actor, name, last in session.execute(query):
        person = departed.get(actor.removeprefix(PERSON_ACTOR_PREFIX))
        last_read_at = as_utc(last)
        if person is not None and last_read_at is not None:
            reads.append((person, str(name), last_read_at))
    return reads


def _within_lookback(person: PersonView, read_at: datetime, as_of: datetime) -> bool:
    left = person.departed_on or as_of.date()
    return (left - read_at.date()).days <= READ_LOOKBACK_DAYS
