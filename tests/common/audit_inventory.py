"""Build small inventories directly in a store for the audit tests.

Every credential starts healthy (owned, held by an enabled service account,
recently used, recently issued, scoped, stored in a vault), so a test changes
one field and expects exactly one rule to fire.
"""

import itertools
from datetime import UTC, date, datetime, timedelta
from typing import Any

from sqlalchemy.orm import Session

from keysteward.credentials.models import Credential
from keysteward.identities.models import Person, ServiceAccount
from keysteward.systems.models import System

AS_OF = datetime(2026, 12, 4, tzinfo=UTC)
_ids = itertools.count(1)


def days_ago(days: int) -> datetime:
    return AS_OF - timedelta(days=days)


class InventoryBuilder:
    """Adds people, systems, service accounts and credentials to a session."""

    def __init__(self, session: Session) -> None:
        self.session = session
        self.owner = self.person("Olivia Owner")
        self.account = self.service_account("svc-sync", owner=self.owner)
        self.systems: dict[str, System] = {}

    def person(
        self, name: str, departed_on: date | None = None, status: str | None = None
    ) -> Person:
        email = f"{name.lower().replace(' ', '.')}.{next(_ids)}@example.com"
        person = Person(
            name=name,
            email=email,
            status=status or ("departed" if departed_on else "active"),
            departed_on=departed_on,
        )
        self.session.add(person)
        self.session.flush()
        return person

    def service_account(
        self, name: str, owner: Person | None = None, status: str = "active"
    ) -> ServiceAccount:
        account = ServiceAccount(
            name=f"{name}-{next(_ids)}",
            owner_id=owner.id if owner else None,
            status=status,
        )
        self.session.add(account)
        self.session.flush()
        return account

    def system(self, name: str = "github", **values: Any) -> System:
        if name not in self.systems:
            system = System(name=name, category="code_hosting", **values)
            self.session.add(system)
            self.session.flush()
            self.systems[name] = system
        return self.systems[name]

    def credential(self, system: str = "github", **values: Any) -> Credential:
        """Add a healthy credential; ``values`` override its columns."""
        attributes = {"usage_known": True, "stored_in": "vault:ops"}
        attributes.update(values.pop("attributes", {}))
        defaults: dict[str, Any] = {
            "name": f"key-{next(_ids)}",
            "kind": "api_key",
            "scopes": ["repo:read"],
            "privilege": "read",
            "owner_id": self.owner.id,
            "created_by_id": self.owner.id,
            "holder_service_account_id": self.account.id,
            "created_at": days_ago(30),
            "last_used_at": days_ago(1),
            "status": "active",
            "source": "native",
            "source_id": f"native-{next(_ids)}",
        }
        defaults.update(values)
        credential = Credential(
            system_id=self.system(system).id, attributes=attributes, **defaults
        )
        self.session.add(credential)
        self.session.flush()
        return credential
