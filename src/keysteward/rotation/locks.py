"""Leases: named locks in the store that work across processes and backends.

A lease row names its owner as ``host:pid:nonce``. Another process may take
the lease over when it has expired, or at once when the owner's process no
longer exists on this host, so a rotation killed mid-step can be resumed
without waiting for the expiry.
"""

import logging
import os
import secrets
import socket
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import datetime, timedelta

from sqlalchemy import delete, select
from sqlalchemy.exc import IntegrityError

from keysteward.clock import as_utc, utcnow
from keysteward.db import Store
from keysteward.rotation.models import RotationLease

log = logging.getLogger(__name__)

DEFAULT_LEASE_TTL = timedelta(minutes=10)
SCHEDULER_LEASE = "rotation:scheduler"


def secret_lease_name(secret_id: int) -> str:
    return f"rotation:secret:{secret_id}"


def new_owner_id() -> str:
    """Return a lease owner id unique to this process and call."""
    return f"{socket.gethostname()}:{os.getpid()}:{secrets.token_hex(4)}"


def owner_is_gone(owner: str) -> bool:
    """Return True when ``owner`` names a process of this host that has exited.

    NOTE: this trusts host names to be unique; two containers that share a
    host name but not a process namespace could take each other's leases.
    """
    host, _, rest = owner.partition(":")
    pid_text = rest.partition(":")[0]
    if host != socket.gethostname() or not pid_text.isdigit():
        return False
    pid = int(pid_text)
    if pid == os.getpid():
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return True
    except PermissionError:
        return False
    return False


def acquire_lease(
    store: Store,
    name: str,
    owner: str,
    *,
    ttl: timedelta = DEFAULT_LEASE_TTL,
    now: datetime | None = None,
) -> bool:
    """Take lease ``name`` for ``owner`` in its own transaction; return success.

    Taking a lease the owner already holds renews it.
    """
    for _attempt in range(2):
        moment = now or utcnow()
        try:
            with store.session() as session:
                row = session.get(RotationLease, name, with_for_update=True)
                if row is None:
                    session.add(
                        RotationLease(
                            name=name,
                            owner=owner,
                            acquired_at=moment,
                            expires_at=moment + ttl,
                        )
                    )
                    session.flush()
                    return True
                if not _can_take(row, owner, moment):
                    return False
                if row.owner != owner:
                    log.warning(
                        "taking over lease %s from %s (expired or exited)",
                        name,
                        row.owner,
                    )
                    row.acquired_at = moment
                row.owner = owner
                row.expires_at = moment + ttl
                return True
        except IntegrityError:
            # Another process inserted the row between our read and insert.
            # The second pass reads that row and treats it as any held lease.
            continue
    return False


def _can_take(row: RotationLease, owner: str, now: datetime) -> bool:
    if row.owner == owner:
        return True
    expires_at = as_utc(row.expires_at)
    if expires_at is not None and expires_at <= now:
        return True
    return owner_is_gone(row.owner)


def release_lease(store: Store, name: str, owner: str) -> None:
    """Drop lease ``name`` if ``owner`` still holds it."""
    with store.session() as session:
        session.execute(
            delete(RotationLease).where(
                RotationLease.name == name, RotationLease.owner == owner
            )
        )


@contextmanager
def held_lease(
    store: Store, name: str, owner: str, *, ttl: timedelta = DEFAULT_LEASE_TTL
) -> Iterator[bool]:
    """Yield whether lease ``name`` was acquired, and release it afterwards."""
    acquired = acquire_lease(store, name, owner, ttl=ttl)
    try:
        yield acquired
    finally:
        if acquired:
            release_lease(store, name, owner)


def lease_owner(store: Store, name: str) -> str | None:
    with store.session() as session:
        return session.scalar(
            select(RotationLease.owner).where(RotationLease.name == name)
        )
