"""Departed people and disabled service accounts get no new access."""

from datetime import date

import pytest
from sqlalchemy import select

from keysteward.authz.errors import UnknownPrincipalError
from keysteward.authz.models import RoleGrant
from keysteward.authz.policy import AssignmentSpec, GroupSpec, Policy, RoleSpec
from keysteward.authz.services import apply_policy, check_policy_principals
from keysteward.db import Store
from keysteward.identities.errors import (
    DepartedPersonError,
    DisabledServiceAccountError,
)
from keysteward.identities.models import (
    Person,
    PersonStatus,
    ServiceAccount,
    ServiceAccountStatus,
)
from keysteward.operators.services import set_password, set_role
from keysteward.tokens.accounts import create_service_account
from keysteward.tokens.principals import find_principal

LEAVER = "bob.former@example.com"
ACTOR = "cli:test"
ADMIN_ROLE = {"crm-admin": RoleSpec("crm-admin", ("hubspot:**:admin",))}


@pytest.fixture
def roster(store: Store) -> Store:
    with store.session() as session:
        session.add(Person(name="Carol", email="carol@example.com"))
        session.add(
            Person(
                name="Bob",
                email=LEAVER,
                status=PersonStatus.DEPARTED,
                departed_on=date(2026, 11, 30),
            )
        )
        session.add(
            ServiceAccount(name="old-sync", status=ServiceAccountStatus.DISABLED)
        )
    return store


def test_find_principal_departed_person(roster: Store) -> None:
    with roster.session() as session:
        found = find_principal(session, f"person:{LEAVER}")
        assert found.name == LEAVER
        with pytest.raises(DepartedPersonError, match="has departed") as raised:
            find_principal(session, f"person:{LEAVER}", active_only=True)
    assert LEAVER in str(raised.value)
    assert raised.value.exit_code == 2


def test_find_principal_disabled_account(roster: Store) -> None:
    with (
        roster.session() as session,
        pytest.raises(DisabledServiceAccountError, match="'old-sync' is disabled"),
    ):
        find_principal(session, "service_account:old-sync", active_only=True)


def test_create_account_departed_owner(roster: Store) -> None:
    with (
        pytest.raises(DepartedPersonError, match=LEAVER),
        roster.session() as session,
    ):
        create_service_account(
            session, "new-sync", owner_email=LEAVER, purpose="CRM", actor=ACTOR
        )
    with roster.session() as session:
        stored = session.scalar(
            select(ServiceAccount).where(ServiceAccount.name == "new-sync")
        )
    assert stored is None


def test_operator_login_departed_person(roster: Store) -> None:
    with (
        pytest.raises(DepartedPersonError, match=LEAVER),
        roster.session() as session,
    ):
        set_password(session, LEAVER, "correct horse battery", actor=ACTOR)
    with (
        pytest.raises(DepartedPersonError, match=LEAVER),
        roster.session() as session,
    ):
        set_role(session, LEAVER, "admin", actor=ACTOR)
    # Taking a role away from someone who left stays possible.
    with roster.session() as session:
        set_role(session, LEAVER, None, actor=ACTOR)


@pytest.mark.parametrize(
    "policy",
    [
        Policy(
            roles=ADMIN_ROLE,
            assignments=(AssignmentSpec(f"person:{LEAVER}", "crm-admin"),),
        ),
        Policy(
            roles=ADMIN_ROLE,
            groups={"ops": GroupSpec("ops", (f"person:{LEAVER}",))},
            assignments=(AssignmentSpec("group:ops", "crm-admin"),),
        ),
    ],
    ids=["assignment", "group-member"],
)
def test_policy_grant_to_departed_person(roster: Store, policy: Policy) -> None:
    with (
        roster.session() as session,
        pytest.raises(DepartedPersonError, match=LEAVER),
    ):
        check_policy_principals(session, policy)
    with (
        pytest.raises(DepartedPersonError, match="departed"),
        roster.session() as session,
    ):
        apply_policy(session, policy, base=None, actor=ACTOR)
    with roster.session() as session:
        assert session.scalars(select(RoleGrant)).all() == []


def test_policy_unknown_principal_rejected(roster: Store) -> None:
    policy = Policy(
        roles=ADMIN_ROLE,
        assignments=(AssignmentSpec("service_account:ghost", "crm-admin"),),
    )
    with (
        roster.session() as session,
        pytest.raises(UnknownPrincipalError, match="service_account:ghost"),
    ):
        check_policy_principals(session, policy)


def test_policy_active_person_accepted(roster: Store) -> None:
    policy = Policy(
        roles=ADMIN_ROLE,
        assignments=(AssignmentSpec("person:carol@example.com", "crm-admin"),),
    )
    with roster.session() as session:
        check_policy_principals(session, policy)
        apply_policy(session, policy, base=None, actor=ACTOR)
    with roster.session() as session:
        assert len(session.scalars(select(RoleGrant)).all()) == 1
