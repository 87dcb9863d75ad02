"""The read generation rises with every change that can alter a secret read."""

import threading
from collections.abc import Callable
from dataclasses import dataclass

import pytest
from sqlalchemy import func, select, text
from sqlalchemy.orm import Session

from common.principals import create_account
from keysteward.authz.services import mark_policy_changed
from keysteward.db import Base, Store
from keysteward.identities.models import (
    Person,
    PersonStatus,
    ServiceAccount,
    ServiceAccountStatus,
)
from keysteward.tokens.models import ApiToken
from keysteward.tokens.principals import Principal
from keysteward.tokens.services import (
    authenticate_api_token,
    issue_api_token,
    revoke_api_token,
)
from keysteward.vault.keys import KeyRing
from keysteward.vault.models import ReadGeneration, Secret
from keysteward.vault.services import put_secret, retire_version
from keysteward.vault.snapshot import read_generation


@dataclass(frozen=True)
class Seeded:
    """Rows that the changes under test start from, with their ids."""

    principal: Principal
    person_id: int
    account_id: int
    token: str
    token_id: int
    secret_id: int


@pytest.fixture
def seeded(store: Store, keyring: KeyRing) -> Seeded:
    principal = create_account(store, "crm-sync", "keysteward:secrets/*:read")
    with store.session() as session:
        person = Person(name="Dana", email="dana@example.com")
        session.add(person)
        issued = issue_api_token(session, principal, actor="t")
        put_secret(session, keyring, "hubspot", b"first", actor="t")
        put_secret(session, keyring, "hubspot", b"second", actor="t")
        session.flush()
        secret_id = session.scalars(select(Secret.id)).one()
        return Seeded(
            principal,
            person.id,
            principal.id,
            issued.token,
            issued.record.id,
            secret_id,
        )


def _generation(store: Store) -> int:
    # On PostgreSQL the fixture's TRUNCATE removed the row, and this first
    # read recreates it, so later changes have a row to raise.
    with store.session() as session:
        return read_generation(session)


Change = Callable[[Session, Seeded, KeyRing], object]


def _insert_person(session: Session, _seeded: Seeded, _keyring: KeyRing) -> None:
    session.add(Person(name="Eve", email="eve@example.com"))


def _depart_person(session: Session, seeded: Seeded, _keyring: KeyRing) -> None:
    session.get_one(Person, seeded.person_id).status = PersonStatus.DEPARTED


def _change_email(session: Session, seeded: Seeded, _keyring: KeyRing) -> None:
    session.get_one(Person, seeded.person_id).email = "dana.b@example.com"


def _delete_person(session: Session, seeded: Seeded, _keyring: KeyRing) -> None:
    session.delete(session.get_one(Person, seeded.person_id))


def _disable_account(session: Session, seeded: Seeded, _keyring: KeyRing) -> None:
    account = session.get_one(ServiceAccount, seeded.account_id)
    account.status = ServiceAccountStatus.DISABLED


def _rename_account(session: Session, seeded: Seeded, _keyring: KeyRing) -> None:
    session.get_one(ServiceAccount, seeded.account_id).name = "crm-sync-2"


def _revoke_token(session: Session, seeded: Seeded, _keyring: KeyRing) -> None:
    revoke_api_token(session, seeded.token_id, actor="t")


def _mark_policy(session: Session, _seeded: Seeded, _keyring: KeyRing) -> None:
    mark_policy_changed(session)


def _put_version(session: Session, _seeded: Seeded, keyring: KeyRing) -> None:
    put_secret(session, keyring, "hubspot", b"third", actor="t")


def _put_new_secret(session: Session, _seeded: Seeded, keyring: KeyRing) -> None:
    put_secret(session, keyring, "payroll", b"p4ss", actor="t")


def _retire_version(session: Session, _seeded: Seeded, _keyring: KeyRing) -> None:
    retire_version(session, "hubspot", 1, actor="t")


def _rename_secret(session: Session, seeded: Seeded, _keyring: KeyRing) -> None:
    session.get_one(Secret, seeded.secret_id).name = "hubspot-eu"


def _create_kek(session: Session, _seeded: Seeded, keyring: KeyRing) -> None:
    keyring.create_kek(session)


WATCHED_CHANGES: dict[str, Change] = {
    "person-insert": _insert_person,
    "person-status": _depart_person,
    "person-email": _change_email,
    "person-delete": _delete_person,
    "account-status": _disable_account,
    "account-rename": _rename_account,
    "token-revoke": _revoke_token,
    "policy-changed": _mark_policy,
    "put-version": _put_version,
    "put-new-secret": _put_new_secret,
    "retire-version": _retire_version,
    "secret-rename": _rename_secret,
    "kek-create": _create_kek,
}


@pytest.mark.parametrize("change", WATCHED_CHANGES.values(), ids=WATCHED_CHANGES)
def test_watched_change_raises(
    store: Store, keyring: KeyRing, seeded: Seeded, change: Change
) -> None:
    before = _generation(store)
    with store.session() as session:
        change(session, seeded, keyring)
    assert _generation(store) > before


def test_token_issue_raises(store: Store, seeded: Seeded) -> None:
    before = _generation(store)
    with store.session() as session:
        issue_api_token(session, seeded.principal, actor="t")
    assert _generation(store) > before


def test_token_use_keeps(store: Store, seeded: Seeded) -> None:
    before = _generation(store)
    with store.session() as session:
        authenticate_api_token(session, seeded.token)
    with store.session() as session:
        record = session.get_one(ApiToken, seeded.token_id)
        assert record.last_used_at is not None
    assert _generation(store) == before


# Columns that no read decision depends on: model, Seeded field, column, value.
UNWATCHED_COLUMNS: dict[str, tuple[type[Base], str, str, str]] = {
    "person-name": (Person, "person_id", "name", "Dana B."),
    "account-purpose": (ServiceAccount, "account_id", "purpose", "exports"),
    "secret-description": (Secret, "secret_id", "description", "CRM key"),
}


@pytest.mark.parametrize(
    ("model", "id_field", "column", "value"),
    UNWATCHED_COLUMNS.values(),
    ids=UNWATCHED_COLUMNS,
)
def test_unwatched_change_keeps(
    store: Store,
    seeded: Seeded,
    model: type[Base],
    id_field: str,
    column: str,
    value: str,
) -> None:
    row_id = getattr(seeded, id_field)
    before = _generation(store)
    with store.session() as session:
        setattr(session.get_one(model, row_id), column, value)
    with store.session() as session:
        assert getattr(session.get_one(model, row_id), column) == value
    assert _generation(store) == before


def test_bulk_update_counted(store: Store, seeded: Seeded) -> None:
    with store.session() as session:
        session.add_all(
            Person(name=f"P{number}", email=f"p{number}@example.com")
            for number in range(3)
        )
        people = session.scalar(select(func.count()).select_from(Person))
    before = _generation(store)
    with store.engine.begin() as connection:
        connection.execute(text("UPDATE people SET status = status"))
    raised = _generation(store) - before
    if store.engine.dialect.name == "postgresql":
        # PostgreSQL raises it once for the whole statement.
        assert raised == 1
    else:
        assert raised == people


def test_deleted_row_recreated(store: Store) -> None:
    before = _generation(store)
    with store.engine.begin() as connection:
        connection.execute(text("DELETE FROM vault_read_generation"))
    recreated = _generation(store)
    assert recreated != before
    assert _generation(store) == recreated
    with store.session() as session:
        rows = session.scalars(select(ReadGeneration)).all()
    assert [(row.id, row.generation) for row in rows] == [(1, recreated)]


def test_truncated_row_recreated(store: Store) -> None:
    if store.engine.dialect.name != "postgresql":
        pytest.skip("TRUNCATE is PostgreSQL only")
    before = _generation(store)
    with store.engine.begin() as connection:
        connection.execute(text("TRUNCATE vault_read_generation"))
    recreated = _generation(store)
    assert recreated != before
    assert _generation(store) == recreated


def test_truncate_raises_on_postgresql(store: Store, seeded: Seeded) -> None:
    if store.engine.dialect.name != "postgresql":
        pytest.skip("TRUNCATE is PostgreSQL only")
    before = _generation(store)
    with store.engine.begin() as connection:
        connection.execute(text("TRUNCATE api_tokens"))
    assert _generation(store) > before


def test_crossed_updates_commit(store: Store, seeded: Seeded) -> None:
    """Two transactions that change watched rows in crossed order both commit.

    The first departs a person and then edits a service account, which the
    second disables in between. Without the triggers the second commits at
    once, and it must with them too. A counter raised in the middle of the
    first would make the second wait for it while holding the account row
    that the first needs next. PostgreSQL would end that deadlock by
    aborting one of them.
    """
    if store.engine.dialect.name != "postgresql":
        pytest.skip("SQLite runs one writer at a time")
    _generation(store)
    errors: list[BaseException] = []
    with store.engine.connect() as first, store.engine.connect() as second:
        first.begin()
        first.execute(
            text("UPDATE people SET status = 'departed' WHERE id = :id"),
            {"id": seeded.person_id},
        )

        def disable_account() -> None:
            try:
                with second.begin():
                    second.execute(
                        text(
                            "UPDATE service_accounts SET status = 'disabled' "
                            "WHERE id = :id"
                        ),
                        {"id": seeded.account_id},
                    )
            except Exception as exc:
                errors.append(exc)

        before = _generation(store)
        thread = threading.Thread(target=disable_account)
        thread.start()
        thread.join(timeout=10)
        second_finished = not thread.is_alive()
        try:
            first.execute(
                text(
                    "UPDATE service_accounts SET purpose = 'offboarded' WHERE id = :id"
                ),
                {"id": seeded.account_id},
            )
            first.commit()
        except Exception as exc:
            errors.append(exc)
            first.rollback()
        thread.join(timeout=30)
    assert [str(error).splitlines()[0] for error in errors] == []
    assert second_finished
    assert _generation(store) == before + 2
