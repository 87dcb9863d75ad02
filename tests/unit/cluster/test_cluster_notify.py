"""Policy notifications between processes, against a real PostgreSQL server."""

import time
from collections.abc import Callable, Iterator

import psycopg
import pytest

from keysteward.authz.engine import Authorizer
from keysteward.authz.services import mark_policy_changed
from keysteward.cluster.notify import (
    LISTENER_NAME,
    PolicyListener,
    psycopg_conninfo,
    start_policy_listener,
)
from keysteward.db import Store


def wait_until(condition: Callable[[], bool], seconds: float = 10.0) -> bool:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if condition():
            return True
        time.sleep(0.02)
    return condition()


def bump_version(store: Store) -> int:
    with store.session() as session:
        return mark_policy_changed(session).version


@pytest.fixture
def listened(postgres_store: Store) -> Iterator[tuple[Authorizer, PolicyListener]]:
    # A long refresh interval, so only the listener can move the index.
    authorizer = Authorizer(postgres_store, refresh_seconds=3600)
    authorizer.refresh()
    listener = PolicyListener(postgres_store, authorizer)
    listener.start()
    assert listener.connected.wait(10)
    yield authorizer, listener
    listener.stop()


def test_listener_rebuilds_on_commit(
    postgres_store: Store, listened: tuple[Authorizer, PolicyListener]
) -> None:
    authorizer, _listener = listened

    version = bump_version(postgres_store)

    assert wait_until(lambda: authorizer.index().version == version)


def test_listener_ignores_rolled_back_change(
    postgres_store: Store, listened: tuple[Authorizer, PolicyListener]
) -> None:
    authorizer, listener = listened
    before = listener.refreshes
    with pytest.raises(RuntimeError), postgres_store.session() as session:
        mark_policy_changed(session)
        raise RuntimeError("roll back")

    committed = bump_version(postgres_store)

    assert wait_until(lambda: authorizer.index().version == committed)
    # The rolled-back change sent nothing, so only the commit caused a rebuild.
    assert listener.refreshes == before + 1


def test_listener_reconnects_after_disconnect(
    postgres_store: Store, listened: tuple[Authorizer, PolicyListener]
) -> None:
    authorizer, listener = listened
    conninfo = psycopg_conninfo(postgres_store.settings.resolved_database_url)
    with psycopg.connect(conninfo, autocommit=True) as admin:
        cut = admin.execute(
            "SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity "
            "WHERE application_name = %s",
            (LISTENER_NAME,),
        ).fetchone()
    assert cut is not None
    assert cut[0] >= 1
    assert wait_until(lambda: not listener.connected.is_set())
    assert listener.connected.wait(10)

    version = bump_version(postgres_store)

    assert wait_until(lambda: authorizer.index().version == version)


def test_start_policy_listener_skips_sqlite(sqlite_store: Store) -> None:
    assert start_policy_listener(sqlite_store) is None
    with sqlite_store.session() as session:
        assert mark_policy_changed(session).version == 1
