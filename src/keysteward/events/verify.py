"""Verification of the event chain and its signed checkpoints."""

from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from keysteward.events.chain import (
    GENESIS_DIGEST,
    HEAD_ROW_ID,
    ChainPoint,
    event_digest,
)
from keysteward.events.checkpoint_record import RECORD_FILE_NAME, read_recorded
from keysteward.events.checkpoints import (
    PUBLIC_KEY_FILE_NAME,
    checkpoint_signature_valid,
    load_pinned_public_key,
    public_key_hex,
)
from keysteward.events.models import Event, EventChainHead, EventCheckpoint

# Stop collecting after this many problems; the first one is what matters,
# and a rewritten log would otherwise list every event after it.
MAX_PROBLEMS = 100
_FETCH_BATCH = 2000


@dataclass(frozen=True)
class Problem:
    """One inconsistency found in the log.

    ``kind`` is one of ``changed``, ``missing``, ``inserted``, ``broken_link``,
    ``reordered``, ``truncated``, ``head_mismatch`` and ``checkpoint``.
    """

    sequence: int | None
    event_id: int | None
    kind: str
    message: str


@dataclass
class VerifyReport:
    """The outcome of one verification run."""

    events_checked: int = 0
    checkpoints_checked: int = 0
    last_sequence: int = 0
    last_digest: str = GENESIS_DIGEST
    problems: list[Problem] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)

    @property
    def valid(self) -> bool:
        return not self.problems

    @property
    def first_problem(self) -> Problem | None:
        return self.problems[0] if self.problems else None

    def as_dict(self) -> dict[str, Any]:
        data = asdict(self)
        data["valid"] = self.valid
        first = self.first_problem
        data["first_problem"] = asdict(first) if first else None
        return data


class _Scan:
    """State carried from one event to the next while walking the chain."""

    def __init__(self, report: VerifyReport, checkpoint_sequences: set[int]) -> None:
        self.report = report
        self.expected_sequence = 1
        self.previous_digest = GENESIS_DIGEST
        self.previous_id: int | None = None
        self.checkpoint_sequences = checkpoint_sequences
        self.digests_at_checkpoints: dict[int, str] = {}

    def add(self, problem: Problem) -> None:
        if len(self.report.problems) < MAX_PROBLEMS:
            self.report.problems.append(problem)

    def check(self, row: Any) -> None:
        self._check_sequence(row)
        self._check_link(row)
        self._check_digest(row)
        self._check_id_order(row)
        if row.sequence in self.checkpoint_sequences:
            self.digests_at_checkpoints[row.sequence] = row.digest
        # Resynchronize on the stored values, so one bad event is reported
        # once and the events after it are still checked against each other.
        self.expected_sequence = max(self.expected_sequence, row.sequence + 1)
        self.previous_digest = row.digest
        self.previous_id = row.id
        self.report.events_checked += 1
        self.report.last_sequence = row.sequence
        self.report.last_digest = row.digest

    def _check_sequence(self, row: Any) -> None:
        expected = self.expected_sequence
        if row.sequence > expected:
            missing = (
                f"sequence {expected}"
                if row.sequence == expected + 1
                else f"sequences {expected} to {row.sequence - 1}"
            )
            self.add(
                Problem(
                    expected,
                    None,
                    "missing",
                    f"event at {missing} is missing: event id {row.id} at "
                    f"sequence {row.sequence} follows sequence {expected - 1} "
                    "(events were removed)",
                )
            )
        elif row.sequence < expected:
            self.add(
                Problem(
                    row.sequence,
                    row.id,
                    "inserted",
                    f"event id {row.id} at sequence {row.sequence} is out of place: "
                    f"the chain has already reached sequence {expected - 1} "
                    "(an event was inserted)",
                )
            )

    def _check_link(self, row: Any) -> None:
        if row.sequence != self.expected_sequence:
            return
        if row.previous_digest == self.previous_digest:
            return
        self.add(
            Problem(
                row.sequence,
                row.id,
                "broken_link",
                f"event {row.sequence} (id {row.id}) does not follow the event "
                f"before it: its previous_digest is {row.previous_digest[:16]}..., "
                f"expected {self.previous_digest[:16]}... (the event before it was "
                "changed and rehashed, or events were inserted or reordered)",
            )
        )

    def _check_digest(self, row: Any) -> None:
        if event_digest(row) == row.digest:
            return
        self.add(
            Problem(
                row.sequence,
                row.id,
                "changed",
                f"event {row.sequence} (id {row.id}) was changed: its stored fields "
                "do not match its digest",
            )
        )

    def _check_id_order(self, row: Any) -> None:
        if self.previous_id is None or row.id > self.previous_id:
            return
        self.add(
            Problem(
                row.sequence,
                row.id,
                "reordered",
                f"event {row.sequence} has id {row.id}, not above id "
                f"{self.previous_id} of the event before it (rows were reordered)",
            )
        )


def verify_chain(
    session: Session,
    home: Path | None = None,
    progress: Callable[[int], None] | None = None,
) -> VerifyReport:
    """Recompute the chain and check the chain head and every checkpoint.

    ``home`` is the folder holding ``checkpoint.pub`` and ``checkpoint.last``.
    Without it, or without those files, checkpoints are checked only against
    the keys stored with them, and deleted checkpoints go unnoticed.
    ``progress`` is called with the number of events checked so far.
    Run it in ``Store.read_snapshot()`` while others may append: at PostgreSQL's
    READ COMMITTED, an event committed between the scan and the head query
    is reported as truncation.
    """
    report = VerifyReport()
    checkpoints = list(
        session.scalars(select(EventCheckpoint).order_by(EventCheckpoint.sequence))
    )
    recorded = read_recorded(home) if home is not None else None
    sequences = {checkpoint.sequence for checkpoint in checkpoints}
    if recorded is not None:
        sequences.add(recorded.sequence)
    scan = _Scan(report, sequences)
    columns = Event.__table__.columns
    rows = session.execute(
        select(*columns)
        .order_by(Event.sequence, Event.id)
        .execution_options(yield_per=_FETCH_BATCH)
    )
    for row in rows:
        scan.check(row)
        if progress is not None and report.events_checked % _FETCH_BATCH == 0:
            progress(report.events_checked)
    if progress is not None:
        progress(report.events_checked)
    _check_head(session, report, scan)
    _check_checkpoints(checkpoints, home, report, scan)
    if recorded is not None:
        assert home is not None
        _check_recorded(recorded, checkpoints, home / RECORD_FILE_NAME, scan)
    report.problems.sort(key=_problem_order)
    return report


def _check_recorded(
    recorded: ChainPoint,
    checkpoints: list[EventCheckpoint],
    path: Path,
    scan: _Scan,
) -> None:
    """Report a checkpoint recorded outside the database that the log no longer has."""
    actual = scan.digests_at_checkpoints.get(recorded.sequence)
    if actual != recorded.digest:
        found = "is missing" if actual is None else f"has digest {actual[:16]}..."
        scan.add(
            Problem(
                recorded.sequence,
                None,
                "checkpoint",
                f"{path} records a checkpoint at event {recorded.sequence} with "
                f"digest {recorded.digest[:16]}..., but that event {found} "
                "(events were removed or rewritten)",
            )
        )
        return
    if not any(
        (checkpoint.sequence, checkpoint.digest) == recorded
        for checkpoint in checkpoints
    ):
        scan.add(
            Problem(
                recorded.sequence,
                None,
                "checkpoint",
                f"{path} records a checkpoint at event {recorded.sequence}, but the "
                "database has none there (checkpoints were deleted)",
            )
        )


def verify_since_checkpoint(
    session: Session, home: Path, trusted: ChainPoint | None = None
) -> VerifyReport:
    """Check only the events after the newest trusted checkpoint.

    A checkpoint is trusted when its signature is valid and, if
    ``HOME/checkpoint.pub`` exists, it was signed by the pinned key. The
    event at the checkpoint must still have the checkpointed digest, and
    every later event must link to it. Without a trusted checkpoint the
    whole chain is checked. This is what a new checkpoint relies on, so
    signing costs time proportional to the events since the last one.

    ``trusted`` is a newer point that the caller wrote or verified itself,
    used in place of the checkpoint. When its event is missing or has
    another digest, the events were changed after the caller saw them, and
    that is reported as the first problem.
    """
    pinned = load_pinned_public_key(home)
    pinned_hex = public_key_hex(pinned) if pinned is not None else None
    anchor = _newest_trusted_checkpoint(session, pinned_hex)
    report = VerifyReport()
    scan = _Scan(report, set())
    query = select(*Event.__table__.columns).order_by(Event.sequence, Event.id)
    anchored = None
    if trusted is not None and (anchor is None or trusted.sequence > anchor.sequence):
        anchored = session.execute(
            select(Event.id, Event.sequence, Event.digest).where(
                Event.sequence == trusted.sequence
            )
        ).first()
        if anchored is None or anchored.digest != trusted.digest:
            scan.add(_moved_trusted_point(trusted, anchored))
            return report
    if anchored is None and anchor is not None:
        anchored = session.execute(
            select(Event.id, Event.sequence, Event.digest).where(
                Event.sequence == anchor.sequence
            )
        ).first()
        if anchored is None or anchored.digest != anchor.digest:
            scan.add(
                Problem(
                    anchor.sequence,
                    anchored.id if anchored else None,
                    "checkpoint",
                    f"event {anchor.sequence} no longer has the digest recorded by "
                    f"checkpoint {anchor.id}",
                )
            )
            return report
    if anchored is not None:
        anchor_point = ChainPoint(anchored.sequence, anchored.digest)
        scan.expected_sequence = anchor_point.sequence + 1
        scan.previous_digest = anchor_point.digest
        scan.previous_id = anchored.id
        report.last_sequence = anchor_point.sequence
        report.last_digest = anchor_point.digest
        query = query.where(Event.sequence > anchor_point.sequence)
    for row in session.execute(query.execution_options(yield_per=_FETCH_BATCH)):
        scan.check(row)
    _check_head(session, report, scan)
    report.problems.sort(key=_problem_order)
    return report


def _moved_trusted_point(trusted: ChainPoint, anchored: Any) -> Problem:
    written = f"{trusted.digest[:16]}..."
    if anchored is None:
        return Problem(
            trusted.sequence,
            None,
            "missing",
            f"event {trusted.sequence} is missing, but this process saw it with "
            f"digest {written} (events were removed or the database was replaced)",
        )
    return Problem(
        trusted.sequence,
        anchored.id,
        "changed",
        f"event {trusted.sequence} no longer has the digest {written} that this "
        "process saw (events were changed or the database was replaced)",
    )


def newest_trusted_checkpoint(session: Session, home: Path) -> ChainPoint | None:
    """Return the point of the newest checkpoint with a valid, pinned signature."""
    pinned = load_pinned_public_key(home)
    pinned_hex = public_key_hex(pinned) if pinned is not None else None
    checkpoint = _newest_trusted_checkpoint(session, pinned_hex)
    if checkpoint is None:
        return None
    return ChainPoint(checkpoint.sequence, checkpoint.digest)


def _newest_trusted_checkpoint(
    session: Session, pinned_hex: str | None
) -> EventCheckpoint | None:
    # Fetched a few at a time, because the first candidate is nearly always
    # the one, and a long-lived log contains thousands of checkpoints.
    candidates = session.scalars(
        select(EventCheckpoint)
        .order_by(EventCheckpoint.sequence.desc(), EventCheckpoint.id.desc())
        .execution_options(yield_per=8)
    )
    try:
        for checkpoint in candidates:
            if pinned_hex is not None and checkpoint.public_key != pinned_hex:
                continue
            if checkpoint_signature_valid(checkpoint):
                return checkpoint
    finally:
        candidates.close()
    return None


def count_events(session: Session) -> int:
    return session.scalar(select(func.count()).select_from(Event)) or 0


def _problem_order(problem: Problem) -> tuple[int, int]:
    return (problem.sequence or 0, problem.event_id or 0)


def _check_head(session: Session, report: VerifyReport, scan: _Scan) -> None:
    head = session.get(EventChainHead, HEAD_ROW_ID)
    if head is None:
        report.warnings.append(
            "the chain head row is missing, so removal of the newest events "
            "can be detected only through checkpoints"
        )
        return
    if head.last_sequence > report.last_sequence:
        scan.add(
            Problem(
                report.last_sequence + 1,
                None,
                "truncated",
                f"events {report.last_sequence + 1} to {head.last_sequence} are "
                f"missing: the chain head records sequence {head.last_sequence} "
                "(the newest events were removed)",
            )
        )
    elif (head.last_sequence, head.last_digest) != (
        report.last_sequence,
        report.last_digest,
    ):
        scan.add(
            Problem(
                report.last_sequence,
                None,
                "head_mismatch",
                f"the chain head records sequence {head.last_sequence} with digest "
                f"{head.last_digest[:16]}..., but the newest event is sequence "
                f"{report.last_sequence} with digest {report.last_digest[:16]}...",
            )
        )


def _check_checkpoints(
    checkpoints: list[EventCheckpoint],
    home: Path | None,
    report: VerifyReport,
    scan: _Scan,
) -> None:
    pinned = load_pinned_public_key(home) if home is not None else None
    if checkpoints and pinned is None:
        location = home / PUBLIC_KEY_FILE_NAME if home else PUBLIC_KEY_FILE_NAME
        report.warnings.append(
            f"no pinned checkpoint key at {location}: checkpoint signatures were "
            "checked only against the keys stored in the database"
        )
    pinned_hex = public_key_hex(pinned) if pinned is not None else None
    for checkpoint in checkpoints:
        report.checkpoints_checked += 1
        for message in _checkpoint_errors(checkpoint, pinned_hex, scan):
            scan.add(Problem(checkpoint.sequence, None, "checkpoint", message))


def _checkpoint_errors(
    checkpoint: EventCheckpoint, pinned_hex: str | None, scan: _Scan
) -> list[str]:
    label = f"checkpoint {checkpoint.id} at sequence {checkpoint.sequence}"
    errors = []
    if pinned_hex is not None and checkpoint.public_key != pinned_hex:
        errors.append(
            f"{label} was signed by key {checkpoint.public_key[:16]}..., not the "
            "pinned checkpoint key (checkpoints were forged or the key replaced)"
        )
    if not checkpoint_signature_valid(checkpoint):
        errors.append(f"{label} has an invalid signature (the row was changed)")
    actual = scan.digests_at_checkpoints.get(checkpoint.sequence)
    if actual is None:
        errors.append(f"{label}: event {checkpoint.sequence} is missing")
    elif actual != checkpoint.digest:
        errors.append(
            f"{label} records digest {checkpoint.digest[:16]}..., but event "
            f"{checkpoint.sequence} has {actual[:16]}... (events up to "
            f"{checkpoint.sequence} were changed and rehashed)"
        )
    return errors
