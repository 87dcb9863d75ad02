"""The API token format, and the pattern that finds our tokens in text.

A token is ``ks_api_`` followed by 43 base62 characters of randomness
(256 bits) and a 6-character base62 CRC32 of the random part. The checksum
lets a typo be rejected without a database lookup, and lets a scanner tell a
real token from a random string with the same prefix. The redaction filter
in ``keysteward.logging`` matches the ``ks_[a-z]+_`` prefix.
"""

import re
import secrets
import zlib

API_TOKEN_PREFIX = "ks_api_"  # noqa: S105 (a public prefix, not a secret)
BASE62_ALPHABET = "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz"
RANDOM_BYTES = 32
# 62**43 > 2**256, so 43 characters hold 256 bits; 62**6 > 2**32 for the CRC.
RANDOM_CHARS = 43
CHECKSUM_CHARS = 6
API_TOKEN_LENGTH = len(API_TOKEN_PREFIX) + RANDOM_CHARS + CHECKSUM_CHARS

#: Matches a keysteward API token in free text; check the checksum with
#: ``has_valid_checksum`` to rule out look-alikes.
API_TOKEN_PATTERN = re.compile(
    rf"(?<![A-Za-z0-9_]){re.escape(API_TOKEN_PREFIX)}"
    rf"[0-9A-Za-z]{{{RANDOM_CHARS + CHECKSUM_CHARS}}}(?![A-Za-z0-9_])"
)


def _base62(number: int, width: int) -> str:
    digits = []
    for _ in range(width):
        number, remainder = divmod(number, 62)
        digits.append(BASE62_ALPHABET[remainder])
    if number:
        raise ValueError(f"number does not fit in {width} base62 digits")
    return "".join(reversed(digits))


def checksum(random_part: str) -> str:
    """Return the 6-character base62 CRC32 of ``random_part``."""
    return _base62(zlib.crc32(random_part.encode("ascii")), CHECKSUM_CHARS)


def generate_api_token() -> str:
    """Return a new random API token with its checksum."""
    number = int.from_bytes(secrets.token_bytes(RANDOM_BYTES), "big")
    random_part = _base62(number, RANDOM_CHARS)
    return API_TOKEN_PREFIX + random_part + checksum(random_part)


def has_valid_checksum(token: str) -> bool:
    """Return whether ``token`` has the API token shape and a matching checksum.

    This needs no database, so a mistyped or truncated token is rejected
    before any lookup.
    """
    if len(token) != API_TOKEN_LENGTH or not API_TOKEN_PATTERN.fullmatch(token):
        return False
    body = token[len(API_TOKEN_PREFIX) :]
    random_part, stated = body[:RANDOM_CHARS], body[RANDOM_CHARS:]
    return secrets.compare_digest(checksum(random_part), stated)
