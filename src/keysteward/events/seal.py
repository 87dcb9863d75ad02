"""Seals of the event chain head: an HMAC over its sequence and digest.

A checkpoint may sign only digests that were verified or computed by a
server process. A process that appends after a sealed head checks the seal
and seals the new head, so a valid seal shows that every link since the
last verified point was added by a process holding the key. Then a
checkpoint can sign the head without reading back the other processes'
events. A head that someone rewrote in the database (a rehashed chain, say)
has no valid seal, because the key is derived from ``checkpoint.key`` in
KEYSTEWARD_HOME, not stored in the database. The next checkpoint then
verifies the events as before.

An old seal copied back together with an old head passes this check, so
the checkpoint also requires the head to be at or past the newest point the
process trusts, and that point's event to be unchanged.
"""

import hashlib
import hmac
from functools import lru_cache
from pathlib import Path

from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.kdf.hkdf import HKDF

from keysteward.events.checkpoints import load_signing_key

SEAL_INFO = b"keysteward event chain head seal v1"


@lru_cache(maxsize=8)
def head_seal_key(home: Path) -> bytes:
    """Derive the seal key from the checkpoint signing key in ``home``.

    Creates the signing key on first use, as ``load_signing_key`` does.
    """
    private = load_signing_key(home).private_bytes(
        serialization.Encoding.Raw,
        serialization.PrivateFormat.Raw,
        serialization.NoEncryption(),
    )
    return HKDF(hashes.SHA256(), length=32, salt=None, info=SEAL_INFO).derive(private)


def seal_head(key: bytes, sequence: int, digest: str) -> str:
    """Return the hex seal of a chain head at ``sequence`` with ``digest``."""
    message = f"{int(sequence)}\n{digest}".encode("ascii")
    return hmac.new(key, message, hashlib.sha256).hexdigest()


def seal_valid(key: bytes, sequence: int, digest: str, seal: str | None) -> bool:
    """Check ``seal`` against the head, in constant time."""
    if not seal:
        return False
    return hmac.compare_digest(seal_head(key, sequence, digest), seal)
