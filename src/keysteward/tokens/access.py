"""Short-lived access tokens: JWTs signed with HS256, checked without the store.

The signing key is derived from the master key with HKDF, so it is never
stored. An access token carries the principal and its effective roles, and
expires after 15 minutes by default.
"""

import os
import secrets
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

    NOTE: revoking the API token does not cut short an access token already
    bought with it; that token stays valid until it expires.
    """
    key = keyring.derived_key(ACCESS_TOKEN_KEY_PURPOSE)
    now = now or utcnow()
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
        if int(claims["exp"]) + LEEWAY_SECONDS <= now.timestamp():
            raise AuthenticationError
        kind = PrincipalType(claims["ptype"])
        name = claims["sub"].partition(":")[2]
        return Principal(kind, int(claims["pid"]), name, frozenset(claims["roles"]))
    except (jwt.InvalidTokenError, ValueError, KeyError, TypeError):
        raise AuthenticationError from None
