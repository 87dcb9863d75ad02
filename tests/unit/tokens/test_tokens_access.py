"""Access tokens: signed JWTs checked without the store."""

import hashlib
from concurrent.futures import ThreadPoolExecutor
from datetime import datetime, timedelta

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


def _issue_at(keyring: KeyRing, now: datetime) -> str:
    return access.issue_access_token(
        keyring, PRINCIPAL, {"crm"}, api_token_id=3, now=now
    ).token


class TestVerifiedAccessTokens:
    def test_hit_returns_cached_principal(self, keyring: KeyRing) -> None:
        cache = access.VerifiedAccessTokens()
        token = _issue_at(keyring, utcnow())
        first = cache.verify(keyring, token)
        second = cache.verify(keyring, token)
        assert first == access.verify_access_token(keyring, token)
        # verify_access_token builds a new Principal on every call.
        assert second is first
        assert len(cache) == 1

    def test_stores_no_token_text(self, keyring: KeyRing) -> None:
        cache = access.VerifiedAccessTokens()
        token = _issue_at(keyring, utcnow())
        cache.verify(keyring, token)
        assert list(cache._entries) == [hashlib.sha256(token.encode()).digest()]
        assert token not in repr(cache._entries)

    def test_expired_rejected_when_cached(self, keyring: KeyRing) -> None:
        cache = access.VerifiedAccessTokens()
        now = utcnow()
        token = _issue_at(keyring, now)
        cache.verify(keyring, token, now=now)
        last_second = now + timedelta(minutes=15, seconds=access.LEEWAY_SECONDS - 1)
        assert cache.verify(keyring, token, now=last_second).id == 7
        later = now + timedelta(minutes=15, seconds=access.LEEWAY_SECONDS + 1)
        with pytest.raises(AuthenticationError):
            cache.verify(keyring, token, now=later)

    def test_tampered_rejected(self, keyring: KeyRing) -> None:
        cache = access.VerifiedAccessTokens()
        token = _issue_at(keyring, utcnow())
        cache.verify(keyring, token)
        header, payload, signature = token.split(".")
        flipped = "A" if signature[0] != "A" else "B"
        tampered = f"{header}.{payload}.{flipped}{signature[1:]}"
        for attempt in range(2):
            with pytest.raises(AuthenticationError):
                cache.verify(keyring, tampered)
            assert len(cache) == 1, attempt

    def test_other_keyring_rejected_when_cached(
        self, keyring: KeyRing, other_keyring: KeyRing
    ) -> None:
        cache = access.VerifiedAccessTokens()
        token = _issue_at(keyring, utcnow())
        cache.verify(keyring, token)
        with pytest.raises(AuthenticationError):
            cache.verify(other_keyring, token)

    def test_full_cache_drops_expired_first(self, keyring: KeyRing) -> None:
        cache = access.VerifiedAccessTokens(max_size=3)
        now = utcnow()
        old = [_issue_at(keyring, now - timedelta(minutes=30)) for _ in range(2)]
        for token in old:
            cache.verify(keyring, token, now=now - timedelta(minutes=30))
        current = _issue_at(keyring, now)
        cache.verify(keyring, current, now=now - timedelta(minutes=30))
        assert len(cache) == 3
        newest = _issue_at(keyring, now)
        first = cache.verify(keyring, current, now=now)
        cache.verify(keyring, newest, now=now)
        # The two expired entries were dropped and the entry for ``current`` kept.
        assert len(cache) == 2
        assert cache.verify(keyring, current, now=now) is first

    def test_full_cache_cleared_when_nothing_expired(self, keyring: KeyRing) -> None:
        cache = access.VerifiedAccessTokens(max_size=3)
        now = utcnow()
        tokens = [_issue_at(keyring, now) for _ in range(10)]
        for count, token in enumerate(tokens, start=1):
            cache.verify(keyring, token, now=now)
            assert len(cache) <= 3, count
        assert len(cache) == 1

    def test_full_cache_cleared_when_few_expired(self, keyring: KeyRing) -> None:
        cache = access.VerifiedAccessTokens(max_size=8)
        now = utcnow()
        expired = _issue_at(keyring, now - timedelta(minutes=30))
        cache.verify(keyring, expired, now=now - timedelta(minutes=30))
        for _ in range(7):
            cache.verify(keyring, _issue_at(keyring, now), now=now)
        assert len(cache) == 8
        cache.verify(keyring, _issue_at(keyring, now), now=now)
        # Dropping the one expired entry would leave 7 of 8: more than 3/4.
        assert len(cache) == 1

    def test_concurrent_verify_stays_bounded(self, keyring: KeyRing) -> None:
        cache = access.VerifiedAccessTokens(max_size=50)
        now = utcnow()
        tokens = [_issue_at(keyring, now) for _ in range(400)]

        def verify_all(offset: int) -> list[int]:
            return [cache.verify(keyring, t, now=now).id for t in tokens[offset::4]]

        with ThreadPoolExecutor(max_workers=4) as pool:
            results = list(pool.map(verify_all, range(4)))
        assert [len(ids) for ids in results] == [100] * 4
        assert all(ids == [7] * 100 for ids in results)
        assert len(cache) <= 50

    def test_max_size_checked(self) -> None:
        with pytest.raises(ValueError, match="max_size must be at least 1"):
            access.VerifiedAccessTokens(max_size=0)
