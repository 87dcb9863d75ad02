"""Offboarding a person against a real store, on SQLite and PostgreSQL."""

import base64
import os

import pytest
from sqlalchemy import select

from common.offboarding_scenario import SECRET_NAME, Scenario, build_scenario
from keysteward.authz.engine import build_index
from keysteward.authz.models import Group, GroupMember, Permission, Role, RoleGrant
from keysteward.authz.services import mark_policy_changed
from keysteward.clock import utcnow
from keysteward.credentials.models import Credential, CredentialKind
from keysteward.crypto.keyring import MASTER_KEY_SETTING, EnvironmentKeyProvider
from keysteward.db import Store
from keysteward.errors import InvalidInputError, NotFoundError
from keysteward.events.models import Event
from keysteward.identities.models import Person, ServiceAccount
from keysteward.offboarding.models import RotationRequest
from keysteward.offboarding.services import NEEDS_OWNER, offboard_person
from keysteward.operators.models import WebSession
from keysteward.operators.services import resume_session, start_session
from keysteward.rotation.models import Rotation
from keysteward.systems.models import System
from keysteward.tokens.errors import AuthenticationError
from keysteward.tokens.services import authenticate_api_token
from keysteward.vault.keys import KeyRing

# Today, because the scenario's secret read is recorded now and offboarding
# looks at the reads before the departure.
DEPARTURE = utcnow().date()


@pytest.fixture
def scenario(store: Store) -> Scenario:
    encoded = base64.b64encode(os.urandom(32)).decode()
    keyring = KeyRing(EnvironmentKeyProvider({MASTER_KEY_SETTING: encoded}))
    with store.session() as session:
        return build_scenario(session, keyring)


def _authenticates(store: Store, token: str) -> bool:
    try:
        with store.session() as session:
            authenticate_api_token(session, token)
    except AuthenticationError:
        return False
    return True


def test_offboard_with_successor(store: Store, scenario: Scenario) -> None:
    with store.session() as session:
        leaver = session.scalar(select(Person).where(Person.email == scenario.leaver))
        assert leaver is not None
        cookie = start_session(session, leaver, source="127.0.0.1").token
    with store.session() as session:
        report = offboard_person(
            session,
            scenario.leaver,
            actor="test",
            successor_email=scenario.successor,
            as_of=DEPARTURE,
        )

    assert len(report.tokens_revoked) == 1
    assert report.dashboard_sessions_ended == 1
    listed = {entry["name"]: entry["relations"] for entry in report.credentials}
    assert listed == {
        "deploy-key": ["created", "owns"],
        "lee-pat": ["owns", "holds"],
    }
    assert [a["name"] for a in report.service_accounts] == ["crm-sync"]
    assert [s["name"] for s in report.systems] == ["github"]
    assert [r["secret"] for r in report.secrets_read] == [SECRET_NAME]
    assert report.secrets_read[0]["rotation_queued"] is True
    assert report.needs_owner == []
    queued_as = {row["name"]: row["queued_as"] for row in report.rotations_queued}
    assert queued_as == {"lee-pat": "request", "openai-prod": "rotation"}

    assert not _authenticates(store, scenario.person_token)
    with store.session() as session:
        assert resume_session(session, cookie) is None
        assert session.scalars(select(WebSession)).all() == []
    assert _authenticates(store, scenario.account_token)
    with store.session() as session:
        leaver = session.scalar(select(Person).where(Person.email == scenario.leaver))
        successor = session.scalar(
            select(Person).where(Person.email == scenario.successor)
        )
        assert leaver is not None and successor is not None
        assert leaver.status == "departed"
        assert leaver.departed_on == DEPARTURE
        deploy_key = session.get(Credential, scenario.deploy_key_id)
        assert deploy_key is not None
        assert deploy_key.owner_id == successor.id
        account = session.scalar(
            select(ServiceAccount).where(ServiceAccount.name == "crm-sync")
        )
        assert account is not None
        assert account.owner_id == successor.id
        github = session.scalar(select(System).where(System.name == "github"))
        assert github is not None
        assert github.owner_id == successor.id
        requests = {
            request.credential_id: request.origin
            for request in session.scalars(select(RotationRequest))
        }
        rotations = set(session.scalars(select(Rotation.credential_id)))
        assert requests == {scenario.pat_id: "offboarding"}
        assert rotations == {scenario.read_credential_id}
        actions = set(session.scalars(select(Event.action)))
    assert {
        "person.depart",
        "token.revoke",
        "credential.owner.transfer",
        "service_account.owner.transfer",
        "system.owner.transfer",
        "rotation.request",
        "person.offboard",
    } <= actions


def test_offboard_without_successor_flags(store: Store, scenario: Scenario) -> None:
    with store.session() as session:
        report = offboard_person(session, scenario.leaver, actor="test")

    assert sorted(report.needs_owner) == [
        "credential deploy-key",
        "credential lee-pat",
        "service_account crm-sync",
        "system github",
    ]
    with store.session() as session:
        account = session.scalar(
            select(ServiceAccount).where(ServiceAccount.name == "crm-sync")
        )
        assert account is not None
        assert account.attributes[NEEDS_OWNER] is True
        assert account.owner is not None
        assert account.owner.email == scenario.leaver


def test_offboard_twice_queues_once(store: Store, scenario: Scenario) -> None:
    for _ in range(2):
        with store.session() as session:
            offboard_person(session, scenario.leaver, actor="test", as_of=DEPARTURE)
    with store.session() as session:
        requests = list(session.scalars(select(RotationRequest)))
        rotations = list(session.scalars(select(Rotation)))
    assert len(requests) == 1
    assert len(rotations) == 1


def test_offboard_unknown_person(store: Store, scenario: Scenario) -> None:
    with (
        pytest.raises(NotFoundError, match="nobody@example.com.*people list"),
        store.session() as session,
    ):
        offboard_person(session, "nobody@example.com", actor="test")


def test_offboard_bad_successor_changes_nothing(
    store: Store, scenario: Scenario
) -> None:
    with (
        pytest.raises(InvalidInputError, match="is the person being offboarded"),
        store.session() as session,
    ):
        offboard_person(
            session, scenario.leaver, actor="test", successor_email=scenario.leaver
        )
    with store.session() as session:
        leaver = session.scalar(select(Person).where(Person.email == scenario.leaver))
        assert leaver is not None
        assert leaver.status == "active"


def _add_group_grant(store: Store, email: str) -> None:
    """Put ``email`` in a group that has a role of its own."""
    with store.session() as session:
        person = session.scalar(select(Person).where(Person.email == email))
        assert person is not None
        role = Role(name="crm-admin")
        role.permissions.append(
            Permission(system="hubspot", resource="**", action="admin")
        )
        group = Group(name="ops")
        session.add_all([role, group])
        session.flush()
        session.add(
            GroupMember(
                group_id=group.id, principal_type="person", principal_id=person.id
            )
        )
        session.add(
            RoleGrant(role_id=role.id, principal_type="group", principal_id=group.id)
        )
        mark_policy_changed(session)


def test_offboard_removes_role_grants(store: Store, scenario: Scenario) -> None:
    _add_group_grant(store, scenario.leaver)
    principal = f"person:{scenario.leaver}"
    secret_read = f"keysteward:secrets/{SECRET_NAME}:read"
    assert build_index(store).check(principal, secret_read)
    assert build_index(store).check(principal, "hubspot:deals:admin")

    with store.session() as session:
        report = offboard_person(session, scenario.leaver, actor="test")

    removed = [(row["via"], row["name"]) for row in report.role_assignments_removed]
    assert removed == [("assignment", "prod-secret-reader"), ("group", "ops")]
    assert not build_index(store).check(principal, secret_read)
    assert not build_index(store).check(principal, "hubspot:deals:admin")
    with store.session() as session:
        person_grants = session.scalars(
            select(RoleGrant).where(RoleGrant.principal_type == "person")
        ).all()
        assert person_grants == []
        assert session.scalars(select(GroupMember)).all() == []
        actions = list(session.scalars(select(Event.action)))
    assert "authz.assignment.remove" in actions
    assert "authz.group.remove" in actions


def test_offboard_dry_run_keeps_grants(store: Store, scenario: Scenario) -> None:
    session = store.session_factory()
    transaction = session.begin()
    report = offboard_person(session, scenario.leaver, actor="test")
    transaction.rollback()
    session.close()

    assert [row["name"] for row in report.role_assignments_removed] == [
        "prod-secret-reader"
    ]
    principal = f"person:{scenario.leaver}"
    assert build_index(store).check(principal, f"keysteward:secrets/{SECRET_NAME}:read")


def test_offboard_person_password_not_queued(store: Store, scenario: Scenario) -> None:
    with store.session() as session:
        leaver = session.scalar(select(Person).where(Person.email == scenario.leaver))
        session.add(
            Credential(
                name="lee console password",
                kind=CredentialKind.PASSWORD,
                holder_person=leaver,
                source="test",
                source_id="lee-console",
            )
        )

    with store.session() as session:
        report = offboard_person(session, scenario.leaver, actor="test")

    queued = [row["name"] for row in report.rotations_queued]
    assert "lee console password" not in queued
    assert "lee-pat" in queued
    assert [
        (row["name"], row["holder"], row["action"])
        for row in report.passwords_not_rotated
    ] == [("lee console password", scenario.leaver, "disable the login")]
    with store.session() as session:
        requested = set(
            session.scalars(
                select(Credential.name).join(
                    RotationRequest, RotationRequest.credential_id == Credential.id
                )
            )
        )
    assert requested == {"lee-pat"}
