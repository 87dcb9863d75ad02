"""Resolving the people, service accounts and systems that exports name.

Exports name people by email or by a login on their own system (a GitHub
login, a Slack user id). A login that is not linked to anyone yet becomes a
placeholder person, with an address under the reserved ".invalid" domain
and ``attributes.placeholder`` set. A later roster row that lists the same
login takes the placeholder over, so credentials follow the real person.
"""

import re
from typing import Any

from sqlalchemy import select, update
from sqlalchemy.orm import Session, selectinload

from keysteward.identities.models import (
    ExternalAccount,
    Person,
    PersonStatus,
    ServiceAccount,
)
from keysteward.inventory.catalog import category_of
from keysteward.inventory.records import (
    PersonRecord,
    PersonRef,
    ServiceAccountRecord,
    SystemRecord,
)
from keysteward.systems.models import System

PLACEHOLDER_DOMAIN = "unresolved.invalid"
PERSON_FIELDS = ("name", "status", "departed_on")


def placeholder_email(ref: PersonRef) -> str:
    label = f"{ref.provider}.{ref.account_id}" if ref.provider else f"name.{ref.name}"
    slug = re.sub(r"[^a-z0-9._-]+", "-", label.lower()).strip("-")
    return f"{slug}@{PLACEHOLDER_DOMAIN}"


def is_placeholder(person: Person) -> bool:
    return bool((person.attributes or {}).get("placeholder"))


# The service-account status the last import read, kept in its attributes.
IMPORTED_STATUS = "imported_status"


class Directory:
    """In-memory index of people, service accounts and systems for one import."""

    def __init__(self, session: Session, report: Any) -> None:
        self.session = session
        self.report = report
        people = session.scalars(select(Person).options(selectinload(Person.accounts)))
        self.people: dict[str, Person] = {}
        self.accounts: dict[tuple[str, str], Person] = {}
        for person in people:
            self._index(person)
        self.service_accounts = {
            account.name: account for account in session.scalars(select(ServiceAccount))
        }
        self.systems = {
            system.name: system for system in session.scalars(select(System))
        }

    def _index(self, person: Person) -> None:
        self.people[person.email] = person
        for account in person.accounts:
            self.accounts[(account.provider, account.account_id)] = person

    def find_person(self, ref: PersonRef) -> Person | None:
        if ref.email and ref.email in self.people:
            return self.people[ref.email]
        if ref.provider and (ref.provider, str(ref.account_id)) in self.accounts:
            return self.accounts[(ref.provider, str(ref.account_id))]
        if ref.name and not ref.email and not ref.provider:
            wanted = ref.name.strip().lower()
            named = [
                p for p in self.people.values() if p.name.strip().lower() == wanted
            ]
            if len(named) == 1:
                return named[0]
            if not named:
                return self.people.get(placeholder_email(ref))
        return None

    def person(self, ref: PersonRef | None, origin: str) -> Person | None:
        """Return the person ``ref`` names, creating a placeholder if unknown."""
        if ref is None:
            return None
        person = self._reconcile(ref)
        if person is None:
            person = self.find_person(ref)
        if person is None:
            email = ref.email or placeholder_email(ref)
            name = ref.name or (
                ref.email.split("@")[0] if ref.email else str(ref.account_id)
            )
            attributes: dict[str, Any] = {"source": origin}
            if not ref.email:
                attributes["placeholder"] = True
            person = Person(
                name=name,
                email=email,
                status=PersonStatus.ACTIVE,
                attributes=attributes,
            )
            self.session.add(person)
            self.people[email] = person
            self.report.people_added.append(email)
        if ref.provider and (ref.provider, str(ref.account_id)) not in self.accounts:
            self.link(person, ref.provider, str(ref.account_id))
        return person

    def _reconcile(self, ref: PersonRef) -> Person | None:
        """Join a placeholder to the email that a later export gives for it."""
        if not (ref.email and ref.provider):
            return None
        by_email = self.people.get(ref.email)
        by_account = self.accounts.get((ref.provider, str(ref.account_id)))
        if by_account is None or not is_placeholder(by_account):
            return None
        if by_email is None:
            del self.people[by_account.email]
            by_account.email = ref.email
            by_account.attributes = {
                k: v for k, v in by_account.attributes.items() if k != "placeholder"
            }
            self.people[ref.email] = by_account
            return by_account
        if by_email is not by_account:
            self._merge(by_account, by_email)
        return by_email

    def link(self, person: Person, provider: str, account_id: str) -> None:
        account = ExternalAccount(provider=provider, account_id=account_id)
        person.accounts.append(account)
        self.accounts[(provider, account_id)] = person

    def service_account(self, name: str | None, origin: str) -> ServiceAccount | None:
        if not name:
            return None
        account = self.service_accounts.get(name)
        if account is None:
            account = ServiceAccount(name=name, attributes={"source": origin})
            self.session.add(account)
            self.service_accounts[name] = account
            self.report.service_accounts_added.append(name)
        return account

    def system(self, name: str | None) -> System | None:
        if not name:
            return None
        system = self.systems.get(name)
        if system is None:
            system = System(name=name, category=category_of(name), attributes={})
            self.session.add(system)
            self.systems[name] = system
            self.report.systems_added.append(name)
        return system

    def apply_roster(
        self, records: list[PersonRecord], origin: str, exact: bool
    ) -> None:
        """Add or update people from roster rows, then set their managers.

        ``exact`` (the native format) replaces attributes instead of merging.
        """
        for record in records:
            self._apply_person(record, origin, exact)
        self.session.flush()
        for record in records:
            self._apply_manager(record)

    def _apply_person(self, record: PersonRecord, origin: str, exact: bool) -> None:
        person = self.people.get(record.email)
        for provider, account_id in record.accounts:
            linked = self.accounts.get((provider, account_id))
            if linked is None or linked is person:
                continue
            if not is_placeholder(linked):
                self.report.warnings.append(
                    f"{provider} account {account_id} of {record.email} is already "
                    f"linked to {linked.email}; left linked to {linked.email}"
                )
            elif person is None:
                # The roster row takes the placeholder over.
                del self.people[linked.email]
                linked.email = record.email
                self.people[record.email] = linked
                person = linked
            else:
                self._merge(linked, person)
        if person is None:
            person = Person(email=record.email, name=record.name, attributes={})
            self.session.add(person)
            self.people[record.email] = person
            self.report.people_added.append(record.email)
        changed = self._update_person(person, record, exact)
        if changed and record.email not in self.report.people_added:
            self.report.people_changed.append(
                {"email": record.email, "fields": changed}
            )
        for provider, account_id in record.accounts:
            if (provider, account_id) not in self.accounts:
                self.link(person, provider, account_id)

    def _update_person(
        self, person: Person, record: PersonRecord, exact: bool
    ) -> list[str]:
        changed = []
        for field in PERSON_FIELDS:
            value = getattr(record, field)
            if getattr(person, field) != value:
                setattr(person, field, value)
                changed.append(field)
        if exact:
            attributes = dict(record.attributes)
        else:
            attributes = {**(person.attributes or {}), **record.attributes}
            attributes.pop("placeholder", None)
        if attributes != (person.attributes or {}):
            person.attributes = attributes
            changed.append("attributes")
        return changed

    def _apply_manager(self, record: PersonRecord) -> None:
        person = self.people[record.email]
        manager = None
        if record.manager:
            ref = (
                PersonRef(email=record.manager.lower())
                if "@" in record.manager
                else PersonRef(name=record.manager)
            )
            manager = self.find_person(ref)
            if manager is None:
                self.report.warnings.append(
                    f"manager {record.manager!r} of {record.email} is not in the "
                    "roster; manager left empty"
                )
        manager_id = manager.id if manager else None
        if person.manager_id != manager_id:
            person.manager_id = manager_id
            if record.email not in self.report.people_added:
                self.report.people_changed.append(
                    {"email": record.email, "fields": ["manager"]}
                )

    def _merge(self, placeholder: Person, person: Person) -> None:
        """Move everything that points at ``placeholder`` to ``person``."""
        from keysteward.credentials.models import Credential

        self.session.flush()
        moves = [
            (Credential, Credential.created_by_id),
            (Credential, Credential.owner_id),
            (Credential, Credential.holder_person_id),
            (ServiceAccount, ServiceAccount.owner_id),
            (System, System.owner_id),
            (Person, Person.manager_id),
        ]
        for model, column in moves:
            self.session.execute(
                update(model)
                .where(column == placeholder.id)
                .values({column.key: person.id})
                .execution_options(synchronize_session="fetch")
            )
        for account in list(placeholder.accounts):
            account.person = person
            self.accounts[(account.provider, account.account_id)] = person
        del self.people[placeholder.email]
        self.session.delete(placeholder)
        self.session.flush()

    def apply_service_account(self, record: ServiceAccountRecord, origin: str) -> None:
        is_new = record.name not in self.service_accounts
        account = self.service_account(record.name, origin)
        assert account is not None
        before = (account.purpose, account.status, account.owner)
        previous_import = (account.attributes or {}).get(IMPORTED_STATUS)
        account.purpose = record.purpose
        if record.status and self._status_applies(account, record, previous_import):
            account.status = record.status
        owner = self.person(record.owner, origin)
        account.owner = owner
        account.attributes = dict(record.attributes)
        if record.status:
            account.attributes[IMPORTED_STATUS] = record.status
        elif previous_import:
            account.attributes[IMPORTED_STATUS] = previous_import
        after = (account.purpose, account.status, account.owner)
        names = ("purpose", "status", "owner")
        fields = [
            name
            for name, old, new in zip(names, before, after, strict=True)
            if old != new
        ]
        if fields and not is_new:
            self.report.service_accounts_changed.append(
                {"name": account.name, "fields": fields}
            )

    def _status_applies(
        self,
        account: ServiceAccount,
        record: ServiceAccountRecord,
        previous_import: str | None,
    ) -> bool:
        """Return whether the export's status replaces the stored one.

        A status that keysteward set (an access review, offboarding or
        ``sa disable``) stays unless the export's own status changed since
        the last import, so re-importing an old export cannot undo it.
        """
        if account.status == record.status or account.id is None:
            return True
        if previous_import is not None and previous_import != record.status:
            return True
        self.report.warnings.append(
            f"service account {account.name} stays {account.status}: keysteward "
            f"set that status, and the export still lists it as {record.status}"
        )
        return False

    def apply_system(self, record: SystemRecord, origin: str) -> None:
        system = self.system(record.name)
        assert system is not None
        if record.category:
            system.category = record.category
        if record.status:
            system.status = record.status
        system.owner = self.person(record.owner, origin)
        system.rotation_max_age_days = record.rotation_max_age_days
        system.attributes = dict(record.attributes)
