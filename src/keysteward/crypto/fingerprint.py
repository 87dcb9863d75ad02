"""Salted fingerprints of secret values.

A fingerprint lets keysteward notice the same secret in two places (two
inventory rows, or a file and the vault) without storing the value. It is an
HMAC-SHA256 keyed with a random per-installation salt, so a fingerprint from
one installation matches nothing in another and cannot be looked up in a
precomputed table.
"""

import hashlib
import hmac
import secrets

SALT_BYTES = 32


def new_salt() -> bytes:
    return secrets.token_bytes(SALT_BYTES)


def fingerprint(value: str | bytes, salt: bytes) -> str:
    """Return the hex HMAC-SHA256 of ``value`` under ``salt``."""
    data = value.encode() if isinstance(value, str) else value
    return hmac.new(salt, data, hashlib.sha256).hexdigest()


def fingerprints_equal(left: str, right: str) -> bool:
    """Compare two fingerprints in constant time."""
    return hmac.compare_digest(left.encode(), right.encode())
