"""Short-lived access tokens: JWTs signed with HS256, checked without the store.

The signing key is derived from the master key with HKDF, so it is never
stored. An access token carries the principal and its effective roles, and
expires after 15 minutes by default.
"""

import hashlib
import os
import secrets
import threading
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

import jwt

from keysteward.clock import utcnow
from keysteward.tokens.errors import AuthenticationError, InvalidTokenRequest
from keysteward.tokens.principals import Principal, PrincipalType
from keysteward.vault.keys import ACCESS_TOKEN_KEY_PURPOSE, KeyRing

ALGORITHM = "HS256"
ISSUER = "keysteward"
AUDIENCE = "keysteward-api"
LIFETIME_SETTING = "KEYSTEWARD_ACCESS_TOKEN_MINUTES"
DEFAULT_LIFETIME = timedelta(minutes=15)
# Tolerated clock difference between processes when checking exp and iat.
LEEWAY_SECONDS = 5


@dataclass(frozen=True)
class AccessToken:
    token: str
    expires_in: int

    def __repr__(self) -> str:
        return f"AccessToken(token=[secure], expires_in={self.expires_in})"


def access_token_lifetime(environ: Mapping[str, str] | None = None) -> timedelta:
    environ = os.environ if environ is None else environ
    raw = environ.get(LIFETIME_SETTING)
    if not raw:
        return DEFAULT_LIFETIME
    if not raw.isdigit() or not 1 <= int(raw) <= 24 * 60:
        raise InvalidTokenRequest(
            f"invalid {LIFETIME_SETTING}={raw!r}; set whole minutes from 1 to 1440"
        )
    return timedelta(minutes=int(raw))


def issue_access_token(
    keyring: KeyRing,
    principal: Principal,
    roles: set[str],
    *,
    api_token_id: int,
    lifetime: timedelta | None = None,
    now: datetime | None = None,
) -> AccessToken:
    """Sign an access token for ``principal`` limited to ``roles``."""
    now = now or utcnow()
    lifetime = lifetime or access_token_lifetime()
    claims: dict[str, Any] = {
        "iss": ISSUER,
        "aud": AUDIENCE,
        "sub": principal.label,
        "ptype": str(principal.type),
        "pid": principal.id,
        "roles": sorted(roles),
        "tid": api_token_id,
        "iat": int(now.timestamp()),
        "exp": int((now + lifetime).timestamp()),
        "jti": secrets.token_hex(12),
    }
    key = keyring.derived_key(ACCESS_TOKEN_KEY_PURPOSE)
    token = jwt.encode(claims, key, algorithm=ALGORITHM)
    return AccessToken(token, int(lifetime.total_seconds()))


def verify_access_token(
    keyring: KeyRing, token: str, *, now: datetime | None = None
) -> Principal:
    """Return the principal an access token names, or raise AuthenticationError.

    Only the signature and claims are checked here. Whether the API token it
    was exchanged for is still in force (``principal.api_token_id``) is
    checked by the API routes and the secret reads, against the store.
    """
    principal, _expires_at = _verify(keyring, token, now or utcnow())
    return principal


def _verify(keyring: KeyRing, token: str, now: datetime) -> tuple[Principal, int]:
    """Return the principal and the exp claim of a valid access token."""
    key = keyring.derived_key(ACCESS_TOKEN_KEY_PURPOSE)
    try:
        # Expiry is checked below against ``now`` so tests can pin the time.
        claims = jwt.decode(
            token,
            key,
            algorithms=[ALGORITHM],
            audience=AUDIENCE,
            issuer=ISSUER,
            options={
                "verify_exp": False,
                "require": ["exp", "iat", "sub", "pid", "ptype", "roles"],
            },
        )
        expires_at = int(claims["exp"])
        if expires_at + LEEWAY_SECONDS <= now.timestamp():
            raise AuthenticationError
        kind = PrincipalType(claims["ptype"])
        name = claims["sub"].partition(":")[2]
        token_id = claims.get("tid")
        principal = Principal(
            kind,
            int(claims["pid"]),
            name,
            frozenset(claims["roles"]),
            None if token_id is None else int(token_id),
        )
    except (jwt.InvalidTokenError, ValueError, KeyError, TypeError):
        raise AuthenticationError from None
    return principal, expires_at


@dataclass(frozen=True)
class _Verified:
    keyring: KeyRing
    principal: Principal
    # POSIX time from which verify_access_token rejects the token.
    rejected_at: float


class VerifiedAccessTokens:
    """A bounded, thread-safe cache of access tokens that passed verification.

    ``verify`` returns the same principal as ``verify_access_token``, but
    reuses a token's verified signature and claims until the token expires or
    its entry is dropped. Entries are keyed by the SHA-256 digest of the
    token, so the cache contains no usable token. A token that fails
    verification is never stored. When ``max_size`` entries are stored,
    adding one drops the expired entries, and then every entry unless that
    freed a quarter of the cache. So the scan for expired entries runs at
    most once per ``max_size // 4`` additions.
    """

    def __init__(self, max_size: int = 10_000) -> None:
        if max_size < 1:
            raise ValueError(f"max_size must be at least 1, got {max_size}")
        self.max_size = max_size
        self._entries: dict[bytes, _Verified] = {}
        # Held only around dict operations, not while a token is verified, so
        # threads and an event loop that share the cache wait only for a dict
        # operation.
        self._lock = threading.Lock()

    def __len__(self) -> int:
        with self._lock:
            return len(self._entries)

    def verify(
        self, keyring: KeyRing, token: str, now: datetime | None = None
    ) -> Principal:
        """Return the principal ``token`` names, verifying it on a cache miss.

        Raises AuthenticationError for any token that verify_access_token
        rejects.
        """
        now = now or utcnow()
        digest = hashlib.sha256(token.encode()).digest()
        with self._lock:
            cached = self._entries.get(digest)
        # A token verified under another key ring is verified again here.
        if (
            cached is not None
            and cached.keyring is keyring
            and now.timestamp() < cached.rejected_at
        ):
            return cached.principal

        principal, expires_at = _verify(keyring, token, now)
        entry = _Verified(keyring, principal, expires_at + LEEWAY_SECONDS)
        with self._lock:
            if len(self._entries) >= self.max_size:
                self._drop_expired(now.timestamp())
                if len(self._entries) > self.max_size * 3 // 4:
                    self._entries.clear()
            self._entries[digest] = entry
        return principal

    def _drop_expired(self, timestamp: float) -> None:
        expired = [
            digest
            for digest, entry in self._entries.items()
            if entry.rejected_at <= timestamp
        ]
        for digest in expired:
            del self._entries[digest]
