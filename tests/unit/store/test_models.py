"""The data model round-trips through both backends."""

from datetime import UTC, date, datetime

import pytest
from sqlalchemy import select
from sqlalchemy.exc import IntegrityError

from keysteward.authz.models import Permission, Role, RoleGrant
from keysteward.clock import as_utc
from keysteward.credentials.models import Credential, CredentialKind, Privilege
from keysteward.credentials.services import fingerprint_secret
from keysteward.db import Store
from keysteward.identities.models import ExternalAccount, Person, ServiceAccount
from keysteward.systems.models import System, SystemCategory


def _seed(store: Store) -> int:
    with store.session() as session:
        manager = Person(name="Alice Admin", email="alice@example.com")
        bob = Person(
            name="Bob Former",
            email="bob@example.com",
            status="departed",
            departed_on=date(2026, 8, 15),
            manager=manager,
        )
        bob.accounts.append(ExternalAccount(provider="github", account_id="bob-former"))
        crm = System(name="hubspot", category=SystemCategory.CRM)
        robot = ServiceAccount(
            name="svc-crm-sync", purpose="CRM to email sync", owner=bob
        )
        credential = Credential(
            name="HubSpot private app",
            kind=CredentialKind.API_KEY,
            system=crm,
            scopes=["crm.objects.contacts.read", "crm.objects.contacts.write"],
            privilege=Privilege.WRITE,
            created_by=bob,
            owner=bob,
            holder_service_account=robot,
            created_at=datetime(2025, 1, 2, 3, 4, 5, tzinfo=UTC),
            source="sheet",
            source_id="row-7",
            fingerprint=fingerprint_secret(session, "not-a-real-secret"),
            attributes={"stored_in": "1Password"},
        )
        session.add_all([manager, bob, crm, robot, credential])
        session.flush()
        return credential.id


def test_credential_round_trip(store: Store) -> None:
    credential_id = _seed(store)

    with store.session() as session:
        loaded = session.get(Credential, credential_id)
        assert loaded is not None
        assert loaded.system is not None
        assert loaded.system.name == "hubspot"
        assert loaded.owner is not None
        assert loaded.owner.email == "bob@example.com"
        assert loaded.owner.manager is not None
        assert loaded.owner.manager.name == "Alice Admin"
        assert loaded.holder_service_account is not None
        assert loaded.holder_service_account.name == "svc-crm-sync"
        assert loaded.scopes == [
            "crm.objects.contacts.read",
            "crm.objects.contacts.write",
        ]
        assert as_utc(loaded.created_at) == datetime(2025, 1, 2, 3, 4, 5, tzinfo=UTC)
        assert loaded.attributes == {"stored_in": "1Password"}
        assert loaded.fingerprint is not None
        assert len(loaded.fingerprint) == 64


def test_credential_update_persists(store: Store) -> None:
    credential_id = _seed(store)
    rotated = datetime(2026, 11, 30, tzinfo=UTC)

    with store.session() as session:
        credential = session.get_one(Credential, credential_id)
        credential.last_rotated_at = rotated
        credential.status = "revoked"

    with store.session() as session:
        credential = session.get_one(Credential, credential_id)
        assert as_utc(credential.last_rotated_at) == rotated
        assert credential.status == "revoked"


def test_credential_source_id_unique(store: Store) -> None:
    _seed(store)
    with pytest.raises(IntegrityError), store.session() as session:
        session.add(Credential(name="duplicate", source="sheet", source_id="row-7"))


def test_credential_has_one_holder(store: Store) -> None:
    with pytest.raises(IntegrityError), store.session() as session:
        person = Person(name="Carol", email="carol@example.com")
        robot = ServiceAccount(name="svc-etl")
        session.add(
            Credential(
                name="two holders",
                source="sheet",
                source_id="row-9",
                holder_person=person,
                holder_service_account=robot,
            )
        )


def test_role_grant_round_trip(store: Store) -> None:
    with store.session() as session:
        role = Role(name="reporting system", description="reads analytics")
        role.permissions.append(
            Permission(system="analytics", resource="reports/*", action="read")
        )
        robot = ServiceAccount(name="svc-reporting")
        session.add_all([role, robot])
        session.flush()
        session.add(
            RoleGrant(
                role=role, principal_type="service_account", principal_id=robot.id
            )
        )

    with store.session() as session:
        grant = session.scalars(select(RoleGrant)).one()
        assert grant.role.name == "reporting system"
        assert [str(p) for p in grant.role.permissions] == ["analytics:reports/*:read"]


def test_fingerprint_stable_within_store(store: Store) -> None:
    with store.session() as session:
        first = fingerprint_secret(session, "value-one")
    with store.session() as session:
        second = fingerprint_secret(session, "value-one")
        other = fingerprint_secret(session, "value-two")
    assert first == second
    assert first != other
