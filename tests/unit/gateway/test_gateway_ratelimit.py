"""Token buckets: the refill arithmetic, and state shared in the store and Redis."""

import asyncio
import secrets
from collections.abc import Iterator

import pytest
import redis

from keysteward.db import Store, open_store
from keysteward.gateway.config import RateLimitSpec
from keysteward.gateway.ratelimit import (
    REDIS_KEY_PREFIX,
    DatabaseRateLimiter,
    RedisRateLimiter,
    rate_limiter_for,
    take_token,
)

REDIS_URL = "redis://127.0.0.1:6379/0"
LIMIT = RateLimitSpec(requests=2, per_seconds=60)


def test_take_token_refills_up_to_capacity() -> None:
    tokens, wait = take_token(0.0, 3600.0, LIMIT)

    assert wait == 0
    assert tokens == LIMIT.capacity - 1


def test_take_token_empty_returns_wait() -> None:
    tokens, wait = take_token(0.5, 0.0, LIMIT)

    assert tokens == 0.5
    assert wait == pytest.approx(15.0)


def test_database_buckets_shared_between_limiters(store: Store) -> None:
    # A second engine on the same database plays the part of a second process.
    other = open_store(store.settings)
    first = DatabaseRateLimiter(store)
    second = DatabaseRateLimiter(other)
    try:
        waits = [
            first.acquire_sync("service_account:a|hub", LIMIT),
            second.acquire_sync("service_account:a|hub", LIMIT),
            first.acquire_sync("service_account:a|hub", LIMIT),
            second.acquire_sync("service_account:b|hub", LIMIT),
        ]
    finally:
        other.engine.dispose()

    assert waits[0] == 0
    assert waits[1] == 0
    assert waits[2] > 0
    assert waits[3] == 0


@pytest.fixture
def redis_key() -> Iterator[str]:
    key = f"test-{secrets.token_hex(6)}|hub"
    yield key
    redis.Redis.from_url(REDIS_URL).delete(REDIS_KEY_PREFIX + key)


def test_redis_buckets_shared_between_limiters(redis_key: str) -> None:
    async def run() -> list[float]:
        first = RedisRateLimiter(REDIS_URL)
        second = RedisRateLimiter(REDIS_URL)
        try:
            return [
                await first.acquire(redis_key, LIMIT),
                await second.acquire(redis_key, LIMIT),
                await first.acquire(redis_key, LIMIT),
            ]
        finally:
            await first.close()
            await second.close()

    waits = asyncio.run(run())

    assert waits[:2] == [0, 0]
    assert 0 < waits[2] <= 30


def test_rate_limiter_for_picks_backend(sqlite_store: Store) -> None:
    chosen = rate_limiter_for(sqlite_store, {"KEYSTEWARD_REDIS_URL": REDIS_URL})

    assert isinstance(chosen, RedisRateLimiter)
    assert isinstance(rate_limiter_for(sqlite_store, {}), DatabaseRateLimiter)
    asyncio.run(chosen.close())
