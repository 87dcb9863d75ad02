"""The hash chain over the event log: canonical form, digests and appends.

Canonical form (format 1) of an event, the input of its SHA-256 digest: a
JSON object with the keys ``format`` (the integer 1), ``sequence``,
``previous_digest``, ``occurred_at``, ``actor``, ``action``, ``target_type``,
``target_id``, ``outcome``, ``source_address``, ``request_id`` and
``details``, serialized with sorted keys, no whitespace (separators ``,``
and ``:``), non-ASCII characters escaped as ``\\uXXXX``, NaN and infinity
rejected, and encoded as UTF-8. ``occurred_at`` is written in UTC with
microseconds, as ``YYYY-MM-DDTHH:MM:SS.ffffffZ``. Absent optional fields are
JSON ``null``. The row ``id`` is a storage key and is not covered, so the
verifier checks instead that ids grow with the sequence.

The first event's ``previous_digest`` is 64 zeros. Each digest is the
lowercase hex SHA-256 of the canonical form.
"""

import hashlib
import itertools
import json
from dataclasses import dataclass
from datetime import datetime
from typing import Any, NamedTuple, Protocol

from sqlalchemy import Connection, event, insert, select, update
from sqlalchemy.dialects.postgresql import insert as postgresql_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.orm import Session

from keysteward.clock import as_utc, utcnow
from keysteward.events.models import Event, EventChainHead

CANONICAL_FORMAT = 1
GENESIS_DIGEST = "0" * 64
HEAD_ROW_ID = 1
# Key of session.info where a transaction's flushes leave the AppendedSpan
# of its events, read by the automatic checkpoints after the commit.
APPENDED_SPAN_KEY = "keysteward.events.appended_span"

_creation_counter = itertools.count()


class ChainPoint(NamedTuple):
    """An event's place in the chain: its sequence number and digest."""

    sequence: int
    digest: str


@dataclass(frozen=True)
class AppendedSpan:
    """The events one transaction appended, as the chain heads around them.

    ``start_sequence`` and ``start_digest`` are the head the transaction
    found (the event before its first one), ``end_sequence`` and
    ``end_digest`` the head it left. ``start_sealed`` is true when the head
    it found had a valid seal (see ``events.seal``), and ``descends_from``
    is a trusted point below that head whose event was unchanged when the
    transaction appended.
    """

    start_sequence: int
    start_digest: str
    end_sequence: int
    end_digest: str
    start_sealed: bool = False
    descends_from: "ChainPoint | None" = None

    def followed_by(self, later: "AppendedSpan") -> "AppendedSpan":
        """Return the span from this one's start to the end of ``later``.

        Raises ValueError when ``later`` does not start where this one ends.
        """
        if (later.start_sequence, later.start_digest) != (
            self.end_sequence,
            self.end_digest,
        ):
            raise ValueError(
                f"appended span from sequence {later.start_sequence} does not "
                f"continue the span ending at sequence {self.end_sequence}"
            )
        return AppendedSpan(
            self.start_sequence,
            self.start_digest,
            later.end_sequence,
            later.end_digest,
            self.start_sealed,
            self.descends_from,
        )


def note_appended(info: dict[Any, Any], span: AppendedSpan) -> None:
    """Add ``span`` to the span noted in a transaction's ``session.info``."""
    earlier: AppendedSpan | None = info.get(APPENDED_SPAN_KEY)
    # Flushes of one transaction hold the chain head lock throughout, so each
    # one continues where the one before it ended, unless a savepoint rolled
    # events back. Then only the newest span is kept.
    try:
        info[APPENDED_SPAN_KEY] = span if earlier is None else earlier.followed_by(span)
    except ValueError:
        info[APPENDED_SPAN_KEY] = span


def format_timestamp(value: datetime) -> str:
    """Return ``value`` in the canonical form: UTC, microseconds, ``Z`` suffix."""
    moment = as_utc(value)
    assert moment is not None
    # isoformat of a UTC time ends in "+00:00". It is several times faster
    # than strftime and gives the same text for the years 1000 to 9999.
    return moment.isoformat(timespec="microseconds")[:-6] + "Z"


def canonical_json(value: Any) -> str:
    """Serialize ``value`` the way the chain does: sorted, compact, ASCII.

    Raises ValueError for NaN or infinity and TypeError for values JSON
    cannot represent (sets, bytes, datetimes) or for non-string keys mixed
    with string keys.
    """
    return _CANONICAL_ENCODER.encode(value)


# Built once: json.dumps builds a new encoder for every call with options.
_CANONICAL_ENCODER = json.JSONEncoder(
    sort_keys=True, separators=(",", ":"), ensure_ascii=True, allow_nan=False
)


def canonical_fields(
    *,
    sequence: int,
    previous_digest: str,
    occurred_at: datetime,
    actor: str,
    action: str,
    target_type: str | None,
    target_id: str | None,
    outcome: str,
    source_address: str | None,
    request_id: str | None,
    details: dict[str, Any],
) -> dict[str, Any]:
    """Return the mapping that is serialized to compute an event's digest."""
    return {
        "format": CANONICAL_FORMAT,
        "sequence": sequence,
        "previous_digest": previous_digest,
        "occurred_at": format_timestamp(occurred_at),
        "actor": actor,
        "action": action,
        "target_type": target_type,
        "target_id": target_id,
        "outcome": outcome,
        "source_address": source_address,
        "request_id": request_id,
        "details": details,
    }


def compute_digest(fields: dict[str, Any]) -> str:
    """Return the hex SHA-256 of the canonical form of ``fields``."""
    encoded = canonical_json(fields).encode("utf-8")
    return hashlib.sha256(encoded).hexdigest()


class CanonicalPieces(NamedTuple):
    """An event's canonical form, split where its chain position goes.

    Joined with the previous digest and the sequence number by ``digest``,
    the pieces give the same text as ``canonical_json(canonical_fields(...))``,
    so all but the hashing can be done before the chain head is locked.
    """

    before_previous_digest: str
    before_sequence: str
    after_sequence: str

    def digest(self, sequence: int, previous_digest: str) -> str:
        """Return the event's digest at ``sequence`` after ``previous_digest``."""
        text = (
            self.before_previous_digest
            + _CANONICAL_ENCODER.encode(previous_digest)
            + self.before_sequence
            + str(int(sequence))
            + self.after_sequence
        )
        return hashlib.sha256(text.encode("ascii")).hexdigest()


class CanonicalTemplate(NamedTuple):
    """The canonical form shared by events that differ only in time, request id
    and source address.
    """

    before_occurred_at: str
    before_previous_digest: str
    after_source_address: str

    def pieces(
        self, occurred_at: datetime, request_id: str | None, source_address: str | None
    ) -> CanonicalPieces:
        """Return the pieces of the event with these values."""
        encode = _CANONICAL_ENCODER.encode
        return CanonicalPieces(
            self.before_occurred_at
            + encode(format_timestamp(occurred_at))
            + self.before_previous_digest,
            _REQUEST_ID_KEY + encode(request_id) + _SEQUENCE_KEY,
            _SOURCE_ADDRESS_KEY + encode(source_address) + self.after_source_address,
        )


def canonical_template(
    *,
    actor: str,
    action: str,
    target_type: str | None,
    target_id: str | None,
    outcome: str,
    details: dict[str, Any],
) -> CanonicalTemplate:
    """Return the canonical form of events with these fields, split at the others."""
    fields = canonical_fields(
        sequence=0,
        previous_digest="",
        occurred_at=datetime.min,
        actor=actor,
        action=action,
        target_type=target_type,
        target_id=target_id,
        outcome=outcome,
        source_address="",
        request_id="",
        details=details,
    )
    fields["occurred_at"] = ""
    text = canonical_json(fields)

    # The keys are found from the right: they sort after "details", and the
    # values after them are strings, numbers or null, which cannot contain a
    # key pattern unescaped.
    time_at = text.rfind(_OCCURRED_AT_KEY) + len(_OCCURRED_AT_KEY)
    digest_at = text.rfind(_PREVIOUS_DIGEST_KEY) + len(_PREVIOUS_DIGEST_KEY)
    source_at = text.rfind(_SOURCE_ADDRESS_KEY)

    between = text[digest_at:source_at]
    if between != '""' + _REQUEST_ID_KEY + '""' + _SEQUENCE_KEY + "0":
        raise AssertionError(f"unexpected canonical layout: {between!r}")
    return CanonicalTemplate(
        text[:time_at],
        text[time_at + len('""') : digest_at],
        text[source_at + len(_SOURCE_ADDRESS_KEY) + len('""') :],
    )


_OCCURRED_AT_KEY = ',"occurred_at":'
_PREVIOUS_DIGEST_KEY = ',"previous_digest":'
_REQUEST_ID_KEY = ',"request_id":'
_SEQUENCE_KEY = ',"sequence":'
_SOURCE_ADDRESS_KEY = ',"source_address":'


class ChainedFields(Protocol):
    """The fields of an event that its digest covers: an Event or a table row."""

    sequence: int
    previous_digest: str
    occurred_at: datetime
    actor: str
    action: str
    target_type: str | None
    target_id: str | None
    outcome: str
    source_address: str | None
    request_id: str | None
    details: dict[str, Any]


def event_digest(recorded: ChainedFields) -> str:
    """Recompute the digest of ``recorded`` from its stored fields."""
    return compute_digest(
        canonical_fields(
            sequence=recorded.sequence,
            previous_digest=recorded.previous_digest,
            occurred_at=recorded.occurred_at,
            actor=recorded.actor,
            action=recorded.action,
            target_type=recorded.target_type,
            target_id=recorded.target_id,
            outcome=recorded.outcome,
            source_address=recorded.source_address,
            request_id=recorded.request_id,
            details=recorded.details,
        )
    )


@event.listens_for(Event, "init")
def _number_new_event(target: Event, _args: Any, _kwargs: Any) -> None:
    # session.new is an unordered set, so the order in which Python created
    # the events decides their order in the chain.
    target.__dict__["_creation_order"] = next(_creation_counter)


@event.listens_for(Session, "before_flush")
def _link_new_events(session: Session, _context: Any, _instances: Any) -> None:
    pending = [obj for obj in session.new if isinstance(obj, Event)]
    if not pending:
        return
    pending.sort(key=lambda obj: obj.__dict__.get("_creation_order", 0))
    connection = session.connection()
    last_sequence, last_digest = lock_chain_head(connection)
    start_sequence, start_digest = last_sequence, last_digest
    for recorded in pending:
        _fill_defaults(recorded)
        last_sequence += 1
        recorded.sequence = last_sequence
        recorded.previous_digest = last_digest
        recorded.digest = event_digest(recorded)
        last_digest = recorded.digest
    connection.execute(
        update(EventChainHead)
        .where(EventChainHead.id == HEAD_ROW_ID)
        # The ORM path does not seal (see events.seal), so the next
        # checkpoint verifies these events.
        .values(last_sequence=last_sequence, last_digest=last_digest, seal=None)
    )
    note_appended(
        session.info,
        AppendedSpan(start_sequence, start_digest, last_sequence, last_digest),
    )


def _fill_defaults(recorded: Event) -> None:
    # Column defaults apply only at INSERT time, after the digest is taken,
    # so every hashed field gets its final value here.
    recorded.occurred_at = as_utc(recorded.occurred_at) or utcnow()
    if recorded.outcome is None:
        recorded.outcome = "success"
    if recorded.details is None:
        recorded.details = {}


def lock_chain_head(connection: Connection) -> tuple[int, str]:
    """Lock the chain head for this transaction; return its sequence and digest.

    On PostgreSQL ``SELECT ... FOR UPDATE`` makes concurrent appenders wait
    for this transaction to end. SQLite has no row locks, so a no-op UPDATE
    takes the database write lock before the head is read; once a writer
    holds it, its reads see the newest committed head.
    """
    # NOTE: the lock is held until the transaction ends, so a long
    # transaction that flushes an event early blocks every other writer of
    # events until it commits. Long jobs should record their events last.
    is_postgresql = connection.dialect.name == "postgresql"
    if not is_postgresql:
        connection.execute(
            update(EventChainHead)
            .where(EventChainHead.id == HEAD_ROW_ID)
            .values(last_sequence=EventChainHead.last_sequence)
        )
    query = select(EventChainHead.last_sequence, EventChainHead.last_digest).where(
        EventChainHead.id == HEAD_ROW_ID
    )
    if is_postgresql:
        query = query.with_for_update()
    row = connection.execute(query).first()
    if row is None:
        _create_chain_head(connection)
        row = connection.execute(query).one()
    return int(row.last_sequence), str(row.last_digest)


def _create_chain_head(connection: Connection) -> None:
    # The head row is created by the migration, so it is missing only after
    # the tables were emptied by hand (TRUNCATE). Rebuild it from the newest
    # event; a concurrent writer may do the same, hence ON CONFLICT.
    newest = connection.execute(
        select(Event.sequence, Event.digest).order_by(Event.sequence.desc()).limit(1)
    ).first()
    values = {
        "id": HEAD_ROW_ID,
        "last_sequence": newest.sequence if newest else 0,
        "last_digest": newest.digest if newest else GENESIS_DIGEST,
    }
    dialect = connection.dialect.name
    if dialect == "postgresql":
        statement = postgresql_insert(EventChainHead).values(values)
        connection.execute(statement.on_conflict_do_nothing())
    elif dialect == "sqlite":
        statement_sqlite = sqlite_insert(EventChainHead).values(values)
        connection.execute(statement_sqlite.on_conflict_do_nothing())
    else:
        connection.execute(insert(EventChainHead).values(values))
