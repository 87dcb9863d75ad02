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
from pathlib import Path
from typing import TYPE_CHECKING

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import (
    Ed25519PrivateKey,
    Ed25519PublicKey,
)
from sqlalchemy import select
from sqlalchemy.orm import Session

from keysteward.clock import utcnow
from keysteward.errors import ConfigError
from keysteward.events.chain import (
    ChainPoint,
    format_timestamp,
    lock_chain_head,
)
from keysteward.events.errors import TamperedLogError
from keysteward.events.models import Event, EventCheckpoint

if TYPE_CHECKING:
    from keysteward.events.verify import VerifyReport

log = logging.getLogger(__name__)

KEY_FILE_NAME = "checkpoint.key"
PUBLIC_KEY_FILE_NAME = "checkpoint.pub"
MESSAGE_PREFIX = b"keysteward event checkpoint v1\n"


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
    # If another process created the key first, its key is kept.
    if _create_whole_file(path, pem, 0o600):
        log.info("created checkpoint signing key", extra={"path": str(path)})


def _create_whole_file(path: Path, data: bytes, mode: int) -> bool:
    """Create ``path`` with ``data`` unless it exists; return whether it did.

    The data goes to a temporary file that is then hard-linked into place,
    so another process never reads a partly written file.
    """
    temporary = path.with_name(f".{path.name}.{os.getpid()}.{os.urandom(4).hex()}")
    descriptor = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_EXCL, mode)
    try:
        with os.fdopen(descriptor, "wb") as handle:
            handle.write(data)
            handle.flush()
            os.fsync(handle.fileno())
        try:
            os.link(temporary, path)
        except FileExistsError:
            return False
        return True
    finally:
        temporary.unlink()


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
    _create_whole_file(path, pem, 0o644)


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
        verified_report(session, home, trusted)
        row = session.execute(
            select(Event.sequence, Event.digest)
            .order_by(Event.sequence.desc())
            .limit(1)
        ).first()
        if row is None:
            return None
        newest = ChainPoint(row.sequence, row.digest)
    return add_checkpoint(session, key, newest)


def add_checkpoint(
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


def verified_report(
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
