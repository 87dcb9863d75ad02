"""Bulk loading of the inventory into the audit's in-memory views.

Five queries load everything: people, service accounts, systems, the active
credentials in scope, and the credentials that share a fingerprint.
"""

from collections.abc import Iterator
from dataclasses import dataclass, field

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from keysteward.audit.context import (
    CredentialView,
    DuplicatePlace,
    PersonView,
    ServiceAccountView,
    SystemView,
)
from keysteward.clock import as_utc
from keysteward.credentials.models import Credential, CredentialStatus
from keysteward.errors import NotFoundError
from keysteward.identities.models import Person, ServiceAccount
from keysteward.systems.models import System

# Rows per IN (...) list, well below the bind-parameter limits of both backends.
IN_CHUNK = 1000


@dataclass
class Inventory:
    credentials: list[CredentialView]
    systems: dict[int, SystemView]
    fingerprint_holders: dict[str, list[DuplicatePlace]]
    # The system the audit is limited to, or None for the whole inventory.
    scope_system: SystemView | None
    people: dict[int, PersonView] = field(default_factory=dict)


def load_inventory(session: Session, system_name: str | None = None) -> Inventory:
    """Load the active credentials (of one system, if named) with what they refer to.

    Raises NotFoundError when ``system_name`` names no system.
    """
    people = _load_people(session)
    accounts = _load_service_accounts(session, people)
    systems = _load_systems(session)
    scope = _find_system(systems, system_name)
    credentials = list(_load_credentials(session, people, accounts, systems, scope))
    holders = _load_fingerprint_holders(session, systems)
    return Inventory(credentials, systems, holders, scope, people)


def _find_system(
    systems: dict[int, SystemView], system_name: str | None
) -> SystemView | None:
    if system_name is None:
        return None
    # Names are compared case-insensitively, so --system AWS finds aws.
    requested = system_name.casefold()
    for system in systems.values():
        if system.name.casefold() == requested:
            return system
    known = ", ".join(sorted(system.name for system in systems.values())) or "none"
    raise NotFoundError(f"system {system_name!r} not found; known systems: {known}")


def _load_people(session: Session) -> dict[int, PersonView]:
    query = select(
        Person.id, Person.name, Person.email, Person.status, Person.departed_on
    )
    return {row.id: PersonView(*row) for row in session.execute(query)}


def _load_service_accounts(
    session: Session, people: dict[int, PersonView]
) -> dict[int, ServiceAccountView]:
    query = select(
        ServiceAccount.id,
        ServiceAccount.name,
        ServiceAccount.status,
        ServiceAccount.owner_id,
    )
    return {
        row.id: ServiceAccountView(
            row.id, row.name, row.status, people.get(row.owner_id or 0)
        )
        for row in session.execute(query)
    }


def _load_systems(session: Session) -> dict[int, SystemView]:
    query = select(
        System.id,
        System.name,
        System.status,
        System.rotation_max_age_days,
        System.attributes,
    )
    return {
        row.id: SystemView(
            row.id, row.name, row.status, row.rotation_max_age_days, row.attributes
        )
        for row in session.execute(query)
    }


CREDENTIAL_COLUMNS = (
    Credential.id,
    Credential.name,
    Credential.kind,
    Credential.privilege,
    Credential.scopes,
    Credential.system_id,
    Credential.owner_id,
    Credential.created_by_id,
    Credential.holder_person_id,
    Credential.holder_service_account_id,
    Credential.created_at,
    Credential.last_rotated_at,
    Credential.last_used_at,
    Credential.expires_at,
    Credential.source,
    Credential.source_id,
    Credential.fingerprint,
    Credential.attributes,
)


def _load_credentials(
    session: Session,
    people: dict[int, PersonView],
    accounts: dict[int, ServiceAccountView],
    systems: dict[int, SystemView],
    scope: SystemView | None,
) -> Iterator[CredentialView]:
    query = select(*CREDENTIAL_COLUMNS).where(
        Credential.status == CredentialStatus.ACTIVE
    )
    if scope is not None:
        query = query.where(Credential.system_id == scope.id)
    query = query.order_by(Credential.id)
    for row in session.execute(query):
        yield CredentialView(
            id=row.id,
            name=row.name,
            kind=row.kind,
            privilege=row.privilege,
            scopes=list(row.scopes or []),
            system=systems.get(row.system_id or 0),
            owner=people.get(row.owner_id or 0),
            created_by=people.get(row.created_by_id or 0),
            holder_person=people.get(row.holder_person_id or 0),
            holder_service_account=accounts.get(row.holder_service_account_id or 0),
            created_at=as_utc(row.created_at),
            last_rotated_at=as_utc(row.last_rotated_at),
            last_used_at=as_utc(row.last_used_at),
            expires_at=as_utc(row.expires_at),
            source=row.source,
            source_id=row.source_id,
            fingerprint=row.fingerprint,
            attributes=row.attributes or {},
        )


def _load_fingerprint_holders(
    session: Session, systems: dict[int, SystemView]
) -> dict[str, list[DuplicatePlace]]:
    """Return the active credentials of every fingerprint used more than once."""
    active = Credential.status == CredentialStatus.ACTIVE
    shared_query = (
        select(Credential.fingerprint)
        .where(active, Credential.fingerprint.is_not(None))
        .group_by(Credential.fingerprint)
        .having(func.count() > 1)
    )
    shared = [value for value in session.scalars(shared_query) if value]
    holders: dict[str, list[DuplicatePlace]] = {}
    for start in range(0, len(shared), IN_CHUNK):
        chunk = shared[start : start + IN_CHUNK]
        query = (
            select(
                Credential.id,
                Credential.name,
                Credential.system_id,
                Credential.fingerprint,
            )
            .where(active, Credential.fingerprint.in_(chunk))
            .order_by(Credential.id)
        )
        for row in session.execute(query):
            system = systems.get(row.system_id or 0)
            place = DuplicatePlace(
                row.id, row.name, system.name if system else "unknown"
            )
            holders.setdefault(row.fingerprint, []).append(place)
    return holders
