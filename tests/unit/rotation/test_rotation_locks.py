"""Leases across processes: acquire, renew, deny, take over."""

import socket
import subprocess
import sys
import threading
from datetime import timedelta

import pytest
from sqlalchemy import func, select

from common.rotation_setup import ACTOR, add_api_token_secret
from keysteward.clock import utcnow
from keysteward.db import Store
from keysteward.rotation.locks import (
    acquire_lease,
    lease_owner,
    new_owner_id,
    owner_is_gone,
    release_lease,
)
from keysteward.rotation.models import Rotation
from keysteward.rotation.services import rotate_secret
from keysteward.vault.keys import KeyRing


def _exited_pid() -> int:
    child = subprocess.run(
        [sys.executable, "-c", "import os; print(os.getpid())"],
        capture_output=True,
        text=True,
        check=True,
    )
    return int(child.stdout)


class TestLeases:
    def test_second_owner_denied(self, store: Store) -> None:
        first, second = new_owner_id(), new_owner_id()

        assert acquire_lease(store, "rotation:test", first)
        assert not acquire_lease(store, "rotation:test", second)
        assert lease_owner(store, "rotation:test") == first

    def test_owner_renews_lease(self, store: Store) -> None:
        owner = new_owner_id()

        assert acquire_lease(store, "rotation:test", owner)
        assert acquire_lease(store, "rotation:test", owner)

    def test_release_frees_lease(self, store: Store) -> None:
        first, second = new_owner_id(), new_owner_id()
        acquire_lease(store, "rotation:test", first)

        release_lease(store, "rotation:test", first)

        assert acquire_lease(store, "rotation:test", second)

    def test_expired_lease_taken_over(self, store: Store) -> None:
        first, second = new_owner_id(), new_owner_id()
        acquire_lease(store, "rotation:test", first, ttl=timedelta(minutes=1))

        later = utcnow() + timedelta(minutes=2)

        assert acquire_lease(store, "rotation:test", second, now=later)
        assert lease_owner(store, "rotation:test") == second

    def test_exited_owner_taken_over(self, store: Store) -> None:
        dead = f"{socket.gethostname()}:{_exited_pid()}:0000"
        acquire_lease(store, "rotation:test", dead)

        assert acquire_lease(store, "rotation:test", new_owner_id())

    def test_owner_on_other_host_kept(self) -> None:
        assert not owner_is_gone("some-other-host:1:abcd")

    def test_live_owner_kept(self) -> None:
        assert not owner_is_gone(new_owner_id())


@pytest.mark.parametrize("store", ["postgresql"], indirect=True)
def test_concurrent_rotations_give_one(store: Store, keyring: KeyRing) -> None:
    add_api_token_secret(store, keyring, "bot-token", grace_hours=0)
    requested_since = utcnow()
    barrier = threading.Barrier(2)
    results = []
    errors: list[BaseException] = []

    def rotate() -> None:
        barrier.wait()
        try:
            results.append(
                rotate_secret(
                    store,
                    keyring,
                    "bot-token",
                    actor=ACTOR,
                    requested_since=requested_since,
                )
            )
        except BaseException as exc:  # reported by the assert below
            errors.append(exc)

    threads = [threading.Thread(target=rotate) for _ in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()

    assert errors == []
    assert len({result.rotation_id for result in results}) == 1
    with store.session() as session:
        assert session.scalar(select(func.count()).select_from(Rotation)) == 1
