"""Policy change notifications between server processes (PostgreSQL only).

``notify_policy_changed`` queues ``NOTIFY keysteward_policy, '<version>'`` in
the caller's transaction, so PostgreSQL delivers it only if that transaction
commits. ``PolicyListener`` is a thread with its own connection that runs
``LISTEN keysteward_policy`` and rebuilds the process's ``Authorizer`` when a
notification arrives. The Authorizer's periodic version check stays in place,
so a notification lost while the listener reconnects delays a change by at
most that check's interval.
"""

import logging
import threading

import psycopg
from sqlalchemy import text
from sqlalchemy.engine import make_url
from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.orm import Session

from keysteward.authz.engine import Authorizer, authorizer_for
from keysteward.db import Store

log = logging.getLogger(__name__)

POLICY_CHANNEL = "keysteward_policy"
LISTENER_NAME = "keysteward-policy-listener"
# How long one wait for notifications lasts, so ``stop`` takes effect soon.
POLL_SECONDS = 0.2
MAX_BACKOFF_SECONDS = 30.0


def notify_policy_changed(session: Session, version: int) -> None:
    """Queue a notification of policy ``version`` (PostgreSQL only)."""
    if session.get_bind().dialect.name != "postgresql":
        return
    session.execute(
        text("SELECT pg_notify(:channel, :payload)"),
        {"channel": POLICY_CHANNEL, "payload": str(version)},
    )


def psycopg_conninfo(database_url: str) -> str:
    """Return ``database_url`` (a SQLAlchemy URL) as a libpq connection URI."""
    url = make_url(database_url).set(drivername="postgresql")
    return url.render_as_string(hide_password=False)


class PolicyListener:
    """A thread that refreshes one store's Authorizer on policy notifications.

    On a lost connection it logs the error and reconnects, waiting 0.5 s,
    then twice as long after each failure, up to ``MAX_BACKOFF_SECONDS``.
    After every (re)connect it rebuilds the index once, because changes
    committed while it was disconnected sent notifications that no listener
    received.
    """

    def __init__(self, store: Store, authorizer: Authorizer | None = None) -> None:
        self._store = store
        self._authorizer = authorizer or authorizer_for(store)
        self._conninfo = psycopg_conninfo(store.settings.resolved_database_url)
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self.connected = threading.Event()
        self.refreshes = 0

    def start(self) -> None:
        self._thread = threading.Thread(
            target=self._run, name=LISTENER_NAME, daemon=True
        )
        self._thread.start()

    def stop(self, timeout: float = 5.0) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout)

    def _run(self) -> None:
        backoff = 0.5
        while not self._stop.is_set():
            try:
                self._listen()
                backoff = 0.5
            except (psycopg.Error, SQLAlchemyError, OSError) as exc:
                self.connected.clear()
                log.warning(
                    "policy listener lost its connection to %s (%s), "
                    "reconnecting in %.1f s",
                    self._store.url,
                    type(exc).__name__,
                    backoff,
                )
                self._stop.wait(backoff)
                backoff = min(backoff * 2, MAX_BACKOFF_SECONDS)
        log.info("policy listener stopped")

    def _listen(self) -> None:
        with psycopg.connect(
            self._conninfo, autocommit=True, application_name=LISTENER_NAME
        ) as conn:
            conn.execute(f"LISTEN {POLICY_CHANNEL}")
            log.info("policy listener connected to %s", self._store.url)
            self._refresh("connected")
            self.connected.set()
            while not self._stop.is_set():
                versions = [
                    notice.payload
                    for notice in conn.notifies(timeout=POLL_SECONDS, stop_after=1)
                ]
                if versions:
                    self._refresh(f"version {versions[-1]}")

    def _refresh(self, cause: str) -> None:
        index = self._authorizer.refresh()
        self.refreshes += 1
        log.info("policy index rebuilt (%s), now at version %d", cause, index.version)


def start_policy_listener(store: Store) -> PolicyListener | None:
    """Start a listener for ``store``'s Authorizer, or return None off PostgreSQL."""
    if store.settings.backend != "postgresql":
        return None
    listener = PolicyListener(store)
    listener.start()
    return listener
