"""api_token_in_force_unlocked returns what api_token_in_force returns, lock-free."""

import sqlite3
from datetime import timedelta

from sqlalchemy import update

from common.principals import create_account
from keysteward.clock import utcnow
from keysteward.db import Store
from keysteward.tokens.models import ApiToken
from keysteward.tokens.services import (
    api_token_in_force,
    api_token_in_force_unlocked,
    issue_api_token,
    revoke_api_token,
)


def _issue(store: Store, principal) -> int:
    with store.session() as session:
        return issue_api_token(session, principal, actor="t").record.id


def _both(store: Store, token_id: int) -> tuple[bool, bool]:
    with store.session() as session:
        locked = api_token_in_force(session, token_id)
    return locked, api_token_in_force_unlocked(store, token_id)


def test_live_token_in_force(store: Store, make_account) -> None:
    token_id = _issue(store, make_account("crm-sync"))
    assert _both(store, token_id) == (True, True)


def test_revoked_token_not_in_force(store: Store, make_account) -> None:
    token_id = _issue(store, make_account("crm-sync"))
    with store.session() as session:
        revoke_api_token(session, token_id, actor="t")
    assert _both(store, token_id) == (False, False)


def test_expired_token_not_in_force(store: Store, make_account) -> None:
    token_id = _issue(store, make_account("crm-sync"))
    with store.session() as session:
        session.execute(
            update(ApiToken)
            .where(ApiToken.id == token_id)
            .values(expires_at=utcnow() - timedelta(seconds=1))
        )
    assert _both(store, token_id) == (False, False)


def test_unknown_token_not_in_force(store: Store) -> None:
    assert _both(store, 987654) == (False, False)


def test_read_while_write_lock_held(sqlite_store: Store) -> None:
    token_id = _issue(sqlite_store, create_account(sqlite_store, "crm-sync"))
    database = sqlite_store.engine.url.database
    assert database is not None
    holder = sqlite3.connect(database, isolation_level=None)
    try:
        holder.execute("BEGIN IMMEDIATE")
        # A Session would wait for the lock here and then fail with
        # "database is locked".
        in_force = api_token_in_force_unlocked(sqlite_store, token_id)
    finally:
        holder.execute("ROLLBACK")
        holder.close()
    assert in_force
