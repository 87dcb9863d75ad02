"""Token-bucket rate limits per principal and system, shared between processes.

Each (principal, system) pair has a bucket that holds up to ``capacity``
tokens and refills at ``rate`` tokens per second. A request takes one token;
an empty bucket rejects it and returns the seconds until a token is back.

The state lives in Redis when ``KEYSTEWARD_REDIS_URL`` is set (one Lua script
per request, so the read and write are atomic and use the Redis server's
clock), and otherwise in the ``gateway_rate_buckets`` table.
"""

import os
from collections.abc import Mapping
from datetime import datetime
from typing import TYPE_CHECKING, Protocol

import anyio.to_thread
from sqlalchemy import select
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.orm import Session

from keysteward.clock import as_utc, utcnow
from keysteward.gateway.config import RateLimitSpec
from keysteward.gateway.models import RateBucket
from keysteward.transactions import run_transaction

if TYPE_CHECKING:
    from keysteward.db import Store

REDIS_SETTING = "KEYSTEWARD_REDIS_URL"
REDIS_KEY_PREFIX = "keysteward:gateway:bucket:"


def bucket_key(principal: str, system: str) -> str:
    return f"{principal}|{system}"


def take_token(
    tokens: float, elapsed: float, limit: RateLimitSpec
) -> tuple[float, float]:
    """Refill a bucket for ``elapsed`` seconds and take one token.

    Returns the tokens left and the wait in seconds, which is 0 when the
    token was taken and positive when the bucket was empty.
    """
    tokens = min(float(limit.capacity), tokens + max(0.0, elapsed) * limit.rate)
    if tokens >= 1.0:
        return tokens - 1.0, 0.0
    return tokens, (1.0 - tokens) / limit.rate


class RateLimiter(Protocol):
    async def acquire(self, key: str, limit: RateLimitSpec) -> float:
        """Take a token for ``key``; return 0, or the seconds to wait when empty."""
        ...

    async def close(self) -> None: ...


# KEYS[1] = bucket key; ARGV = rate per second, capacity. Returns the wait in
# seconds as a string, because Redis truncates Lua numbers to integers.
_REDIS_SCRIPT = """
local rate = tonumber(ARGV[1])
local capacity = tonumber(ARGV[2])
local clock = redis.call('TIME')
local now = tonumber(clock[1]) + tonumber(clock[2]) / 1000000
local state = redis.call('HMGET', KEYS[1], 'tokens', 'at')
local tokens = tonumber(state[1]) or capacity
local at = tonumber(state[2]) or now
tokens = math.min(capacity, tokens + math.max(0, now - at) * rate)
local wait = 0
if tokens >= 1 then
  tokens = tokens - 1
else
  wait = (1 - tokens) / rate
end
redis.call('HSET', KEYS[1], 'tokens', tostring(tokens), 'at', tostring(now))
redis.call('PEXPIRE', KEYS[1], math.ceil(capacity / rate * 1000) + 1000)
return tostring(wait)
"""


class RedisRateLimiter:
    """Buckets in Redis, shared by every gateway process that uses the same server."""

    def __init__(self, url: str) -> None:
        import redis.asyncio

        self._client = redis.asyncio.Redis.from_url(url)
        self._script = self._client.register_script(_REDIS_SCRIPT)

    async def acquire(self, key: str, limit: RateLimitSpec) -> float:
        wait = await self._script(
            keys=[REDIS_KEY_PREFIX + key], args=[limit.rate, limit.capacity]
        )
        return float(wait)

    async def close(self) -> None:
        await self._client.aclose()


class DatabaseRateLimiter:
    """Buckets in the store; each request costs one short transaction.

    NOTE: the refill uses each process's clock, so processes whose clocks
    disagree refill a shared bucket slightly faster or slower.
    """

    def __init__(self, store: "Store") -> None:
        self._store = store

    async def acquire(self, key: str, limit: RateLimitSpec) -> float:
        return await anyio.to_thread.run_sync(self.acquire_sync, key, limit)

    def acquire_sync(self, key: str, limit: RateLimitSpec) -> float:
        return run_transaction(
            self._store, lambda session: _take_from_row(session, key, limit)
        )

    async def close(self) -> None:
        return None


def _insert_if_missing(session: Session, key: str, capacity: float) -> None:
    dialect = session.get_bind().dialect.name
    values = {"key": key, "tokens": capacity, "updated_at": utcnow()}
    if dialect == "postgresql":
        session.execute(
            postgresql.insert(RateBucket)
            .values(**values)
            .on_conflict_do_nothing(index_elements=["key"])
        )
        return
    if dialect == "sqlite":
        session.execute(
            sqlite.insert(RateBucket)
            .values(**values)
            .on_conflict_do_nothing(index_elements=["key"])
        )
        return
    # NOTE: other backends take a read-then-insert path that can fail when
    # two processes create the same bucket at once.
    if session.get(RateBucket, key) is None:
        session.add(RateBucket(**values))
        session.flush()


def _take_from_row(session: Session, key: str, limit: RateLimitSpec) -> float:
    _insert_if_missing(session, key, float(limit.capacity))
    # FOR UPDATE serializes concurrent requests on PostgreSQL; on SQLite the
    # transaction already holds the write lock.
    row = session.scalars(
        select(RateBucket).where(RateBucket.key == key).with_for_update()
    ).one()
    now = utcnow()
    updated: datetime = as_utc(row.updated_at) or now
    tokens, wait = take_token(row.tokens, (now - updated).total_seconds(), limit)
    row.tokens = tokens
    row.updated_at = now
    return wait


def rate_limiter_for(
    store: "Store", environ: Mapping[str, str] | None = None
) -> RateLimiter:
    """Return a Redis limiter if ``KEYSTEWARD_REDIS_URL`` is set, else the store's."""
    environ = os.environ if environ is None else environ
    url = environ.get(REDIS_SETTING)
    if url:
        return RedisRateLimiter(url)
    return DatabaseRateLimiter(store)
