"""Signed checkpoints of the event chain, and the Ed25519 key that signs them.

A checkpoint states "the chain had digest D at sequence N", signed with a key
kept outside the database: ``checkpoint.key`` in KEYSTEWARD_HOME. Someone
who can rewrite the database can rehash the whole chain, but cannot sign a
checkpoint for the rewritten chain without that file. The public key is
stored with each checkpoint and pinned in ``checkpoint.pub`` beside the
private key, so checkpoints signed by a substituted key are detected too.
"""

import logging
import os
import stat
import threading
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, NamedTuple

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import (
    Ed25519PrivateKey,
    Ed25519PublicKey,
)
from sqlalchemy import event, func, select, update
from sqlalchemy.orm import Session

from keysteward.clock import utcnow
from keysteward.db import Store
from keysteward.errors import ConfigError
from keysteward.events.chain import (
    APPENDED_SPAN_KEY,
    HEAD_ROW_ID,
    AppendedSpan,
    format_timestamp,
    lock_chain_head,
)
from keysteward.events.errors import TamperedLogError
from keysteward.events.models import Event, EventChainHead, EventCheckpoint
from keysteward.events.seal import head_seal_key, seal_head, seal_valid

if TYPE_CHECKING:
    from keysteward.events.verify import VerifyReport

log = logging.getLogger(__name__)

KEY_FILE_NAME = "checkpoint.key"
PUBLIC_KEY_FILE_NAME = "checkpoint.pub"
DEFAULT_CHECKPOINT_INTERVAL = 1000
MESSAGE_PREFIX = b"keysteward event checkpoint v1\n"


class ChainPoint(NamedTuple):
    """An event's place in the chain: its sequence number and digest."""

    sequence: int
    digest: str


def checkpoint_message(sequence: int, digest: str, created_at_text: str) -> bytes:
    """Return the bytes a checkpoint signature covers."""
    body = f"{sequence}\n{digest}\n{created_at_text}"
    return MESSAGE_PREFIX + body.encode("ascii")


def public_key_hex(key: Ed25519PublicKey) -> str:
    raw = key.public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)
    return raw.hex()


def load_signing_key(home: Path) -> Ed25519PrivateKey:
    """Load ``HOME/checkpoint.key``, creating it (mode 0600) on first use.

    Pins the public key in ``HOME/checkpoint.pub`` when that file is missing.
    Raises ConfigError when the key file is readable by group or others, is
    not an Ed25519 private key, or does not match the pinned public key.
    """
    key_path = home / KEY_FILE_NAME
    if not key_path.exists():
        _create_key_file(key_path)
    _check_key_permissions(key_path)
    try:
        key = serialization.load_pem_private_key(key_path.read_bytes(), password=None)
    except ValueError:
        raise ConfigError(
            f"invalid checkpoint signing key {key_path}: not a PEM private key; "
            "restore it from backup"
        ) from None
    if not isinstance(key, Ed25519PrivateKey):
        raise ConfigError(
            f"invalid checkpoint signing key {key_path}: expected an Ed25519 key"
        )
    pinned = load_pinned_public_key(home)
    if pinned is None:
        _pin_public_key(home / PUBLIC_KEY_FILE_NAME, key.public_key())
    elif public_key_hex(pinned) != public_key_hex(key.public_key()):
        raise ConfigError(
            f"checkpoint signing key {key_path} does not match the pinned public "
            f"key {home / PUBLIC_KEY_FILE_NAME}; restore the original key file "
            "instead of replacing it"
        )
    return key


def load_pinned_public_key(home: Path) -> Ed25519PublicKey | None:
    """Return the key pinned in ``HOME/checkpoint.pub``, or None if it is missing."""
    path = home / PUBLIC_KEY_FILE_NAME
    if not path.exists():
        return None
    try:
        key = serialization.load_pem_public_key(path.read_bytes())
    except ValueError:
        raise ConfigError(
            f"invalid pinned checkpoint key {path}: not a PEM public key"
        ) from None
    if not isinstance(key, Ed25519PublicKey):
        raise ConfigError(f"invalid pinned checkpoint key {path}: expected Ed25519")
    return key


def _create_key_file(path: Path) -> None:
    path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
    key = Ed25519PrivateKey.generate()
    pem = key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )
    # O_EXCL: if another process created the key first, keep its key.
    try:
        descriptor = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:
        return
    with os.fdopen(descriptor, "wb") as handle:
        handle.write(pem)
    log.info("created checkpoint signing key", extra={"path": str(path)})


def _check_key_permissions(path: Path) -> None:
    mode = path.stat().st_mode
    if not stat.S_ISREG(mode):
        raise ConfigError(f"checkpoint signing key {path} is not a regular file")
    if mode & 0o077:
        raise ConfigError(
            f"checkpoint signing key {path} is readable or writable by group or "
            f"others (mode {stat.S_IMODE(mode):04o}); run: chmod 600 {path}"
        )


def _pin_public_key(path: Path, key: Ed25519PublicKey) -> None:
    pem = key.public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    try:
        descriptor = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o644)
    except FileExistsError:
        return
    with os.fdopen(descriptor, "wb") as handle:
        handle.write(pem)


def create_checkpoint(
    session: Session, home: Path, trusted: ChainPoint | None = None
) -> EventCheckpoint | None:
    """Sign and add a checkpoint at the newest event.

    ``trusted`` is a point of the chain that the caller computed or verified
    itself, such as the end of its own appends. When the chain head is still
    at that point, it is signed as it is. Otherwise the events after
    ``trusted`` (or after the newest trusted checkpoint, when that is newer)
    are verified first, and a ``trusted`` event that is missing or changed
    counts as tampering. So a checkpoint only ever signs digests that this
    process computed or checked. Returns the new checkpoint, the existing
    one when the newest event is already checkpointed, or None when the log
    is empty. Raises TamperedLogError naming the first bad event.
    """
    key = load_signing_key(home)
    # Hold the chain head while verifying: otherwise appenders committing
    # between the verifier's reads make a consistent log look truncated.
    head = ChainPoint(*lock_chain_head(session.connection()))
    if trusted is not None and trusted == head and head.sequence > 0:
        # NOTE: the events before the head are not read again, so a row
        # changed after this process wrote it is found by a full verify
        # (against this checkpoint), not by refusing to sign.
        newest = head
    else:
        _verified_report(session, home, trusted)
        row = session.execute(
            select(Event.sequence, Event.digest)
            .order_by(Event.sequence.desc())
            .limit(1)
        ).first()
        if row is None:
            return None
        newest = ChainPoint(row.sequence, row.digest)
    return _add_checkpoint(session, key, newest)


def _add_checkpoint(
    session: Session, key: Ed25519PrivateKey, newest: ChainPoint
) -> EventCheckpoint:
    """Sign ``newest``, or return the checkpoint that already records it."""
    existing = session.scalars(
        select(EventCheckpoint)
        .where(EventCheckpoint.sequence == newest.sequence)
        .order_by(EventCheckpoint.id.desc())
        .limit(1)
    ).first()
    if existing is not None and existing.digest == newest.digest:
        return existing
    created_at = utcnow()
    message = checkpoint_message(
        newest.sequence, newest.digest, format_timestamp(created_at)
    )
    checkpoint = EventCheckpoint(
        sequence=newest.sequence,
        digest=newest.digest,
        created_at=created_at,
        public_key=public_key_hex(key.public_key()),
        signature=key.sign(message).hex(),
    )
    session.add(checkpoint)
    session.flush()
    return checkpoint


def checkpoint_signature_valid(checkpoint: EventCheckpoint) -> bool:
    """Check the checkpoint's signature against the public key stored with it."""
    try:
        key = Ed25519PublicKey.from_public_bytes(bytes.fromhex(checkpoint.public_key))
        signature = bytes.fromhex(checkpoint.signature)
    except ValueError:
        return False
    message = checkpoint_message(
        checkpoint.sequence, checkpoint.digest, format_timestamp(checkpoint.created_at)
    )
    try:
        key.verify(signature, message)
    except InvalidSignature:
        return False
    return True


class TrustedHead:
    """The newest point of the chain that this process wrote or verified itself.

    It starts unknown, is set by each checkpoint the process signs, and
    moves along with every commit of this process that appended right after
    it. While no other writer appends in between, the next checkpoint then
    signs that point without reading the events back.
    """

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._point: ChainPoint | None = None

    @property
    def point(self) -> ChainPoint | None:
        return self._point

    def follow(self, span: AppendedSpan) -> None:
        """Move to the end of ``span`` if it starts at the current point."""
        start = ChainPoint(span.start_sequence, span.start_digest)
        with self._lock:
            if self._point == start:
                self._point = ChainPoint(span.end_sequence, span.end_digest)

    def checkpointed(self, point: ChainPoint) -> None:
        """Take a point just signed, unless this process already wrote past it."""
        with self._lock:
            if self._point is None or self._point.sequence < point.sequence:
                self._point = point


# The automatic checkpoint of each store that has them, by its session factory.
_after_append_hooks: dict[int, Callable[[AppendedSpan, bool], None]] = {}


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
    store: Store, every: int = DEFAULT_CHECKPOINT_INTERVAL
) -> Callable[[], None]:
    """Sign a checkpoint each time a commit passes a multiple of ``every`` events.

    The checkpoint is written in its own transaction right after the commit
    that crossed the boundary, with the key in the store's home folder. A
    failure is logged and does not undo the events, which are already
    committed. It is tried again at the next boundary. Returns a function
    that turns the behaviour off again.
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

    def disable() -> None:
        event.remove(factory, "after_commit", after_commit)
        event.remove(factory, "after_soft_rollback", after_rollback)
        _after_append_hooks.pop(id(factory), None)

    return disable


def _checkpoint_if_due(
    store: Store, appended: int, every: int, trusted: TrustedHead
) -> int:
    """Sign a checkpoint when ``appended`` crossed a boundary; return the newest one.

    The events to check are read in a snapshot that blocks no writer, because
    after other processes' appends they can number thousands. Only the
    events appended since that snapshot are checked under the chain head's
    lock, before the head is signed and sealed.
    """
    home = store.settings.home
    # Taken before the snapshot starts, so the snapshot contains its event.
    trusted_point = trusted.point
    with store.read_snapshot() as session:
        last_checkpointed = (
            session.scalar(select(func.max(EventCheckpoint.sequence))) or 0
        )
        if appended // every <= last_checkpointed // every:
            return last_checkpointed
        point = _point_to_sign(session, home, trusted_point)
    if point is None:
        return last_checkpointed
    key = load_signing_key(home)
    with store.session() as session:
        lock_chain_head(session.connection())
        newest = _verified_head(session, home, point)
        created = _add_checkpoint(session, key, newest)
        signed = ChainPoint(created.sequence, created.digest)
        session.execute(
            update(EventChainHead)
            .where(EventChainHead.id == HEAD_ROW_ID)
            .values(seal=seal_head(head_seal_key(home), *newest))
        )
    # Only after the commit, so a point is never trusted for a checkpoint
    # that was rolled back.
    trusted.checkpointed(signed)
    return signed.sequence


def _point_to_sign(
    session: Session, home: Path, trusted: ChainPoint | None
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
        sealed = seal_valid(head_seal_key(home), *head, row.seal)
        if sealed and _still_below(session, home, trusted, head):
            return head
    report = _verified_report(session, home, trusted)
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
    report = _verified_report(session, home, point)
    return ChainPoint(report.last_sequence, report.last_digest)


def _verified_report(
    session: Session, home: Path, trusted: ChainPoint | None
) -> "VerifyReport":
    # Imported here because the verifier imports this module.
    from keysteward.events.verify import verify_since_checkpoint

    report = verify_since_checkpoint(session, home, trusted)
    first = report.first_problem
    if first is not None:
        raise TamperedLogError(
            f"the event log failed verification, so no checkpoint was signed: "
            f"{first.message}. Run 'keysteward events verify' for the full report"
        )
    return report
