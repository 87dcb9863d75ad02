"""The native inventory format: every person, service account, system and
credential, with every field, keyed by natural ids instead of row ids.

``keysteward inventory export`` writes it and ``keysteward import --source
native`` reads it back, so an export imported into an empty store and
exported again gives the same document.
"""

import json
from datetime import date, datetime
from typing import Any

import yaml
from sqlalchemy import select
from sqlalchemy.orm import Session, selectinload

from keysteward.clock import as_utc
from keysteward.credentials.models import Credential
from keysteward.identities.models import Person, ServiceAccount
from keysteward.inventory.linking import IMPORTED_STATUS
from keysteward.systems.models import System

FORMAT_KEY = "keysteward_inventory"
FORMAT_VERSION = 1
DATETIME_FIELDS = (
    "created_at",
    "last_rotated_at",
    "last_used_at",
    "expires_at",
    "first_seen_at",
)


def _iso(value: datetime | None) -> str | None:
    aware = as_utc(value)
    return None if aware is None else aware.isoformat()


def _day(value: date | None) -> str | None:
    return None if value is None else value.isoformat()


def _sorted(attributes: dict[str, Any] | None) -> dict[str, Any]:
    return dict(sorted((attributes or {}).items()))


def export_inventory(session: Session) -> dict[str, Any]:
    """Return the whole inventory as a native document, in a stable order."""
    people = list(
        session.scalars(
            select(Person).options(selectinload(Person.accounts)).order_by(Person.email)
        )
    )
    email_of = {person.id: person.email for person in people}
    accounts = list(
        session.scalars(select(ServiceAccount).order_by(ServiceAccount.name))
    )
    account_name = {account.id: account.name for account in accounts}
    systems = list(session.scalars(select(System).order_by(System.name)))
    system_name = {system.id: system.name for system in systems}
    credentials = session.scalars(
        select(Credential).order_by(Credential.source, Credential.source_id)
    )
    return {
        FORMAT_KEY: FORMAT_VERSION,
        "people": [_person(person, email_of) for person in people],
        "service_accounts": [_service_account(a, email_of) for a in accounts],
        "systems": [_system(system, email_of) for system in systems],
        "credentials": [
            _credential(c, email_of, account_name, system_name) for c in credentials
        ],
    }


def _person(person: Person, email_of: dict[int, str]) -> dict[str, Any]:
    return {
        "email": person.email,
        "name": person.name,
        "status": person.status,
        "departed_on": _day(person.departed_on),
        "manager": email_of.get(person.manager_id) if person.manager_id else None,
        "accounts": sorted(
            (
                {"provider": a.provider, "account_id": a.account_id}
                for a in person.accounts
            ),
            key=lambda a: (a["provider"], a["account_id"]),
        ),
        "attributes": _sorted(person.attributes),
    }


def _service_account(
    account: ServiceAccount, email_of: dict[int, str]
) -> dict[str, Any]:
    return {
        "name": account.name,
        "purpose": account.purpose,
        "owner": email_of.get(account.owner_id) if account.owner_id else None,
        "status": account.status,
        # The last imported status is bookkeeping of this store, not data.
        "attributes": _sorted(
            {
                key: value
                for key, value in (account.attributes or {}).items()
                if key != IMPORTED_STATUS
            }
        ),
    }


def _system(system: System, email_of: dict[int, str]) -> dict[str, Any]:
    return {
        "name": system.name,
        "category": system.category,
        "status": system.status,
        "owner": email_of.get(system.owner_id) if system.owner_id else None,
        "rotation_max_age_days": system.rotation_max_age_days,
        "attributes": _sorted(system.attributes),
    }


def _credential(
    credential: Credential,
    email_of: dict[int, str],
    account_name: dict[int, str],
    system_name: dict[int, str],
) -> dict[str, Any]:
    def person(person_id: int | None) -> str | None:
        return email_of.get(person_id) if person_id else None

    entry: dict[str, Any] = {
        "source": credential.source,
        "source_id": credential.source_id,
        "name": credential.name,
        "kind": credential.kind,
        "system": system_name.get(credential.system_id)
        if credential.system_id
        else None,
        "scopes": list(credential.scopes or []),
        "privilege": credential.privilege,
        "status": credential.status,
        "created_by": person(credential.created_by_id),
        "owner": person(credential.owner_id),
        "holder_person": person(credential.holder_person_id),
        "holder_service_account": account_name.get(credential.holder_service_account_id)
        if credential.holder_service_account_id
        else None,
        # NOTE: fingerprints are salted per installation, so they only match
        # other fingerprints of the installation that wrote this export.
        "fingerprint": credential.fingerprint,
        "secret_hint": credential.secret_hint,
    }
    for field in DATETIME_FIELDS:
        entry[field] = _iso(getattr(credential, field))
    entry["attributes"] = _sorted(credential.attributes)
    return entry


def dump_inventory(document: dict[str, Any], output_format: str) -> str:
    """Serialize a native document as YAML or JSON text."""
    if output_format == "json":
        return (
            json.dumps(document, indent=2, sort_keys=False, ensure_ascii=False) + "\n"
        )
    return yaml.safe_dump(document, sort_keys=False, allow_unicode=True, width=100)
