"""Access tokens: signed JWTs checked without the store."""

from datetime import timedelta

import jwt
import pytest

from keysteward.clock import utcnow
from keysteward.tokens import access
from keysteward.tokens.errors import AuthenticationError
from keysteward.tokens.principals import Principal, PrincipalType
from keysteward.vault.keys import ACCESS_TOKEN_KEY_PURPOSE, KeyRing

PRINCIPAL = Principal(PrincipalType.SERVICE_ACCOUNT, 7, "crm-sync")


def test_round_trip_carries_claims(keyring: KeyRing) -> None:
    issued = access.issue_access_token(keyring, PRINCIPAL, {"crm"}, api_token_id=3)
    assert issued.expires_in == 15 * 60
    found = access.verify_access_token(keyring, issued.token)
    assert found.label == "service_account:crm-sync"
    assert found.id == 7
    assert found.role_limit == frozenset({"crm"})
    assert issued.token not in repr(issued)


def test_expired_rejected(keyring: KeyRing) -> None:
    issued = access.issue_access_token(keyring, PRINCIPAL, set(), api_token_id=3)
    later = utcnow() + timedelta(minutes=15, seconds=access.LEEWAY_SECONDS + 1)
    access.verify_access_token(keyring, issued.token)
    with pytest.raises(AuthenticationError):
        access.verify_access_token(keyring, issued.token, now=later)


def test_other_master_key_rejected(keyring: KeyRing, other_keyring: KeyRing) -> None:
    issued = access.issue_access_token(keyring, PRINCIPAL, set(), api_token_id=3)
    with pytest.raises(AuthenticationError):
        access.verify_access_token(other_keyring, issued.token)


def test_altered_claims_rejected(keyring: KeyRing) -> None:
    issued = access.issue_access_token(keyring, PRINCIPAL, set(), api_token_id=3)
    header, payload, signature = issued.token.split(".")
    forged_payload = jwt.encode(
        {"sub": "service_account:admin", "pid": 1}, "x" * 32, algorithm="HS256"
    ).split(".")[1]
    with pytest.raises(AuthenticationError):
        access.verify_access_token(keyring, f"{header}.{forged_payload}.{signature}")


def test_unsigned_token_rejected(keyring: KeyRing) -> None:
    claims = {
        "iss": access.ISSUER,
        "aud": access.AUDIENCE,
        "sub": "service_account:crm-sync",
        "ptype": "service_account",
        "pid": 7,
        "roles": [],
        "iat": int(utcnow().timestamp()),
        "exp": int(utcnow().timestamp()) + 60,
    }
    unsigned = jwt.encode(claims, None, algorithm="none")
    with pytest.raises(AuthenticationError):
        access.verify_access_token(keyring, unsigned)
    # The same claims signed with the right key are accepted.
    key = keyring.derived_key(ACCESS_TOKEN_KEY_PURPOSE)
    signed = jwt.encode(claims, key, algorithm="HS256")
    assert access.verify_access_token(keyring, signed).id == 7


def test_lifetime_setting() -> None:
    assert access.access_token_lifetime({}) == timedelta(minutes=15)
    assert access.access_token_lifetime({access.LIFETIME_SETTING: "5"}) == timedelta(
        minutes=5
    )
