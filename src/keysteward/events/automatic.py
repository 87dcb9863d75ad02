"""Automatic checkpoints: signed as events accumulate, by one process or several.

Each process keeps a ``TrustedHead``, the newest chain point it wrote or
verified, and the process whose commit crosses a multiple of the interval
signs. ``sign_checkpoint`` reads what it must verify in a snapshot that
blocks no writer, trusts a sealed head (see ``events.seal``) where it can,
seals the head it signs and records it in ``checkpoint.last``.
"""

import logging
import threading
from collections.abc import Callable
from pathlib import Path

from sqlalchemy import event, func, select, update
from sqlalchemy.orm import Session

from keysteward.db import Store
from keysteward.errors import ConfigError
from keysteward.events.chain import (
    APPENDED_SPAN_KEY,
    HEAD_ROW_ID,
    AppendedSpan,
    ChainPoint,
    lock_chain_head,
)
from keysteward.events.checkpoint_record import read_recorded, record_signed
from keysteward.events.checkpoints import (
    add_checkpoint,
    load_signing_key,
    verified_report,
)
from keysteward.events.models import Event, EventChainHead, EventCheckpoint
from keysteward.events.seal import head_seal_key, seal_head, seal_valid

log = logging.getLogger(__name__)

DEFAULT_CHECKPOINT_INTERVAL = 1000


class TrustedHead:
    """The newest point of the chain that this process wrote or verified itself.

    It starts unknown, is set by each checkpoint the process signs, and
    moves along with every commit of this process that appended right after
    it, or after a sealed head further on (see ``follow``). While no other
    writer appends in between, the next checkpoint then signs that point
    without reading the events back.
    """

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._point: ChainPoint | None = None

    @property
    def point(self) -> ChainPoint | None:
        return self._point

    def follow(self, span: AppendedSpan) -> None:
        """Move to the end of ``span`` if it starts at the current point.

        A span that starts at a sealed head past the point moves it forward
        too, when its transaction found the point's event unchanged
        (``descends_from``), because a valid seal shows that server processes
        wrote every event up to that head. So the point keeps up while other
        processes append in between. A sealed head copied back after events
        were deleted does not move it, even once the chain grows past the
        point again, and the next checkpoint finds the point's event changed.
        A process without a point takes the end of its first sealed span.
        """
        start = ChainPoint(span.start_sequence, span.start_digest)
        end = ChainPoint(span.end_sequence, span.end_digest)
        with self._lock:
            continues = self._point == start
            if self._point is None:
                descends = span.start_sealed
            else:
                descends = span.start_sealed and span.descends_from == self._point
            if continues or descends:
                self._point = end

    def checkpointed(self, point: ChainPoint) -> None:
        """Take a point just signed, unless this process already wrote past it."""
        with self._lock:
            if self._point is None or self._point.sequence < point.sequence:
                self._point = point


# The automatic checkpoint of each store that has them, by its session factory.
_after_append_hooks: dict[int, Callable[[AppendedSpan, bool], None]] = {}
# The trusted chain point of each store that has automatic checkpoints.
_trusted_heads: dict[int, TrustedHead] = {}


def trusted_point(store: Store) -> ChainPoint | None:
    """Return the store's trusted chain point, for appenders to check against."""
    trusted = _trusted_heads.get(id(store.session_factory))
    return trusted.point if trusted is not None else None


def events_committed(
    store: Store, span: AppendedSpan, *, in_background: bool = False
) -> None:
    """Sign a checkpoint if due, for a commit made outside a Session.

    Session commits run this by themselves once automatic checkpoints are on.
    With ``in_background``, for callers on an event loop, a due checkpoint
    is signed in a thread of its own, because signing may wait for a lock.
    """
    hook = _after_append_hooks.get(id(store.session_factory))
    if hook is not None:
        hook(span, in_background)


def enable_automatic_checkpoints(
    store: Store, every: int = DEFAULT_CHECKPOINT_INTERVAL, *, background: bool = False
) -> Callable[[], None]:
    """Sign a checkpoint each time a commit passes a multiple of ``every`` events.

    The checkpoint is written in its own transaction right after the commit
    that crossed the boundary, with the key in the store's home folder. A
    failure is logged and does not undo the events, which are already
    committed. It is tried again at the next boundary. With ``background``,
    as servers need, every checkpoint is signed in a thread of its own, so
    no request waits while a long log is verified. Returns a function that
    turns the behaviour off again.
    """
    if every < 1:
        raise ConfigError(f"invalid checkpoint interval {every}: must be at least 1")
    factory = store.session_factory
    # The highest checkpointed sequence this process has seen, a lower bound
    # of the stored one, so commits that cannot have crossed a boundary skip
    # the query.
    # The interval whose checkpoint failed last, so a log that fails
    # verification is reported once per interval, not after every commit.
    known = {"checkpointed": 0, "failed_interval": -1}
    trusted = TrustedHead()
    # Held while a background thread signs, so at most one does at a time.
    signing = threading.Lock()

    def sign(appended: int) -> None:
        try:
            known["checkpointed"] = _checkpoint_if_due(store, appended, every, trusted)
        except Exception:
            known["failed_interval"] = appended // every
            log.exception(
                "automatic event checkpoint failed; retrying after %d more events",
                every,
                extra={"sequence": appended},
            )

    def sign_and_release(appended: int) -> None:
        try:
            sign(appended)
        finally:
            signing.release()

    def after_append(span: AppendedSpan, in_background: bool = False) -> None:
        in_background = in_background or background
        trusted.follow(span)
        appended = span.end_sequence
        interval = appended // every
        if interval <= known["checkpointed"] // every:
            return
        crossed = span.start_sequence // every < interval
        if not crossed and interval == known["checkpointed"] // every + 1:
            # Another process's commit crossed this boundary, so that
            # process signs, and this one looks again only if a whole
            # interval passes without a checkpoint that it has seen.
            return
        if interval == known["failed_interval"]:
            return
        if not in_background:
            sign(appended)
            return
        # A commit after the running signer's start tries again once it ends.
        if signing.acquire(blocking=False):
            threading.Thread(
                target=sign_and_release,
                args=(appended,),
                name="keysteward-checkpoint",
                daemon=True,
            ).start()

    def after_commit(session: Session) -> None:
        # SQLAlchemy also calls this when a savepoint is released; the outer
        # transaction still holds its locks then, so wait for its own commit.
        if session.in_nested_transaction():
            return
        span = session.info.pop(APPENDED_SPAN_KEY, None)
        if span is not None:
            after_append(span)

    def after_rollback(session: Session, _previous: object) -> None:
        session.info.pop(APPENDED_SPAN_KEY, None)

    event.listen(factory, "after_commit", after_commit)
    event.listen(factory, "after_soft_rollback", after_rollback)
    _after_append_hooks[id(factory)] = after_append
    _trusted_heads[id(factory)] = trusted

    def disable() -> None:
        event.remove(factory, "after_commit", after_commit)
        event.remove(factory, "after_soft_rollback", after_rollback)
        _after_append_hooks.pop(id(factory), None)
        _trusted_heads.pop(id(factory), None)

    return disable


def _checkpoint_if_due(
    store: Store, appended: int, every: int, trusted: TrustedHead
) -> int:
    """Sign a checkpoint when ``appended`` crossed a boundary; return the newest one."""
    # Taken before the snapshot starts, so the snapshot contains its event.
    trusted_point = trusted.point
    with store.read_snapshot() as session:
        last_checkpointed = (
            session.scalar(select(func.max(EventCheckpoint.sequence))) or 0
        )
    if appended // every <= last_checkpointed // every:
        return last_checkpointed
    signed = sign_checkpoint(store, trusted_point, every=every)
    if signed is None:
        return last_checkpointed
    # Only after the commit, so a point is never trusted for a checkpoint
    # that was rolled back.
    trusted.checkpointed(signed)
    return signed.sequence


def sign_checkpoint(
    store: Store,
    trusted: ChainPoint | None = None,
    *,
    every: int | None = None,
    trust_seal: bool = True,
) -> ChainPoint | None:
    """Sign a checkpoint at the newest event, seal the head and record it.

    ``trusted`` is a point of the chain that the caller wrote or verified
    itself. The events after the newest trusted point (``trusted``, the
    newest signed checkpoint or the one recorded in ``checkpoint.last``) are
    read in a snapshot that blocks no writer, unless ``trust_seal`` is true
    and the head's seal is valid (see ``events.seal``). Only the events
    appended since the snapshot
    are checked under the chain head's lock. With ``every``, nothing is
    signed when another process signed a checkpoint in the same interval
    meanwhile, and that one is returned. Returns None for an empty log, and
    raises TamperedLogError naming the first problem.
    """
    home = store.settings.home
    recorded = read_recorded(home)
    if recorded is not None and (
        trusted is None or recorded.sequence > trusted.sequence
    ):
        trusted = recorded
    with store.read_snapshot() as session:
        point = _point_to_sign(session, home, trusted, trust_seal)
    if point is None:
        return None
    key = load_signing_key(home)
    with store.session() as session:
        lock_chain_head(session.connection())
        newest = _verified_head(session, home, point)
        latest = session.scalars(
            select(EventCheckpoint).order_by(EventCheckpoint.sequence.desc()).limit(1)
        ).first()
        if (
            every is not None
            and latest is not None
            and latest.sequence // every >= newest.sequence // every
        ):
            return ChainPoint(latest.sequence, latest.digest)
        created = add_checkpoint(session, key, newest)
        signed = ChainPoint(created.sequence, created.digest)
        session.execute(
            update(EventChainHead)
            .where(EventChainHead.id == HEAD_ROW_ID)
            .values(seal=seal_head(head_seal_key(home), *newest))
        )
    record_signed(home, signed)
    return signed


def _point_to_sign(
    session: Session, home: Path, trusted: ChainPoint | None, trust_seal: bool
) -> ChainPoint | None:
    """Return the newest chain point that server processes wrote or this one verified.

    That is the head itself when it is still ``trusted``, or when its seal
    is valid and the newest trusted point (``trusted`` or the newest signed
    checkpoint) is still in the chain below it. Otherwise the events after
    that point are verified, and TamperedLogError names the first problem.
    Returns None for an empty log.
    """
    row = session.execute(
        select(
            EventChainHead.last_sequence,
            EventChainHead.last_digest,
            EventChainHead.seal,
        ).where(EventChainHead.id == HEAD_ROW_ID)
    ).first()
    if row is not None and row.last_sequence > 0:
        head = ChainPoint(row.last_sequence, row.last_digest)
        if trusted == head:
            return head
        sealed = trust_seal and seal_valid(head_seal_key(home), *head, row.seal)
        if sealed and _still_below(session, home, trusted, head):
            return head
    report = verified_report(session, home, trusted)
    if report.last_sequence == 0:
        return None
    return ChainPoint(report.last_sequence, report.last_digest)


def _still_below(
    session: Session, home: Path, trusted: ChainPoint | None, head: ChainPoint
) -> bool:
    """Return whether the newest trusted point is unchanged at or below ``head``."""
    # Imported here because the verifier imports this module.
    from keysteward.events.verify import newest_trusted_checkpoint

    anchor = trusted
    checkpoint = newest_trusted_checkpoint(session, home)
    if checkpoint is not None and (
        anchor is None or checkpoint.sequence > anchor.sequence
    ):
        anchor = checkpoint
    if anchor is None:
        return True
    if anchor.sequence > head.sequence:
        return False
    digest = session.scalar(
        select(Event.digest).where(Event.sequence == anchor.sequence)
    )
    return digest == anchor.digest


def _verified_head(session: Session, home: Path, point: ChainPoint) -> ChainPoint:
    """Verify the events after ``point`` up to the locked head; return the head."""
    report = verified_report(session, home, point)
    return ChainPoint(report.last_sequence, report.last_digest)
