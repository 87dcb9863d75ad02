"""keysteward's own inventory format (YAML or JSON), as ``inventory export``
writes it. Credentials keep the source they were first imported from."""

from datetime import date
from typing import Any

from keysteward.credentials.models import CredentialKind, CredentialStatus, Privilege
from keysteward.identities.models import PersonStatus
from keysteward.inventory.export import DATETIME_FIELDS, FORMAT_KEY, FORMAT_VERSION
from keysteward.inventory.importers.base import Importer, LoadedFile
from keysteward.inventory.parsing import Where, as_list, as_text_list, parse_datetime
from keysteward.inventory.records import (
    CredentialRecord,
    ParsedBatch,
    PersonRecord,
    PersonRef,
    ServiceAccountRecord,
    SystemRecord,
)

PERSON_STATUSES = {str(status) for status in PersonStatus}
KINDS = {str(kind) for kind in CredentialKind}
PRIVILEGES = {str(level) for level in Privilege}
STATUSES = {str(status) for status in CredentialStatus}


def _ref(email: Any) -> PersonRef | None:
    return PersonRef(email=str(email).lower()) if email else None


def _choice(
    entry: dict[str, Any], field: str, allowed: set[str], default: str, where: Where
) -> str:
    value = entry.get(field, default)
    if not isinstance(value, str) or value not in allowed:
        raise where.error(field, f"one of {', '.join(sorted(allowed))}", value)
    return str(value)


def _optional_text(entry: dict[str, Any], field: str, where: Where) -> str | None:
    """Return a scalar field as text; raise when it is a list or mapping."""
    value = entry.get(field)
    if value is None:
        return None
    if isinstance(value, dict | list):
        raise where.error(field, "a string", value)
    return str(value)


def _optional_int(entry: dict[str, Any], field: str, where: Where) -> int | None:
    value = entry.get(field)
    if value is None:
        return None
    if not isinstance(value, int) or isinstance(value, bool):
        raise where.error(field, "a whole number", value)
    return value


def _dict(entry: dict[str, Any], field: str, where: Where) -> dict[str, Any]:
    value = entry.get(field) or {}
    if not isinstance(value, dict):
        raise where.error(field, "a mapping", value)
    return value


class NativeImporter(Importer):
    format = "native.inventory"
    source = "native"
    order = 20

    def matches(self, loaded: LoadedFile) -> bool:
        return isinstance(loaded.document, dict) and FORMAT_KEY in loaded.document

    def parse(self, loaded: LoadedFile) -> ParsedBatch:
        document = loaded.document
        if document.get(FORMAT_KEY) != FORMAT_VERSION:
            raise Where(loaded.name, "document").error(
                FORMAT_KEY, f"format version {FORMAT_VERSION}", document.get(FORMAT_KEY)
            )
        batch = self.new_batch(loaded)
        batch.native = True
        for index, entry in enumerate(self._list(document, "people", loaded.name)):
            batch.people.append(
                self._person(entry, Where(loaded.name, f"people[{index}]"))
            )
        for index, entry in enumerate(
            self._list(document, "service_accounts", loaded.name)
        ):
            where = Where(loaded.name, f"service_accounts[{index}]")
            batch.service_accounts.append(self._service_account(entry, where))
        for index, entry in enumerate(self._list(document, "systems", loaded.name)):
            batch.systems.append(
                self._system(entry, Where(loaded.name, f"systems[{index}]"))
            )
        for index, entry in enumerate(self._list(document, "credentials", loaded.name)):
            where = Where(loaded.name, f"credentials[{index}]")
            batch.credentials.append(self._credential(entry, where))
        return batch

    def _list(
        self, document: dict[str, Any], key: str, file: str
    ) -> list[dict[str, Any]]:
        entries = document.get(key) or []
        if not isinstance(entries, list):
            raise Where(file, "document").error(key, "a list")
        for index, entry in enumerate(entries):
            if not isinstance(entry, dict):
                raise Where(file, f"{key}[{index}]").error("entry", "a mapping", entry)
        return entries

    def _person(self, entry: dict[str, Any], where: Where) -> PersonRecord:
        email = entry.get("email")
        if not isinstance(email, str) or "@" not in email:
            raise where.error("email", "an email address", email)
        departed = entry.get("departed_on")
        if departed is not None and not isinstance(departed, date):
            parsed = parse_datetime(departed, where, "departed_on")
            departed = parsed.date() if parsed else None
        accounts = []
        for account in as_list(entry.get("accounts"), where, "accounts"):
            if (
                not isinstance(account, dict)
                or not account.get("provider")
                or not account.get("account_id")
            ):
                raise where.error(
                    "accounts", "a list of {provider, account_id}", account
                )
            accounts.append((str(account["provider"]), str(account["account_id"])))
        return PersonRecord(
            email=email.lower(),
            name=str(entry.get("name") or email),
            status=_choice(
                entry, "status", PERSON_STATUSES, PersonStatus.ACTIVE, where
            ),
            departed_on=departed,
            manager=_optional_text(entry, "manager", where),
            accounts=accounts,
            attributes=_dict(entry, "attributes", where),
        )

    def _service_account(
        self, entry: dict[str, Any], where: Where
    ) -> ServiceAccountRecord:
        if not entry.get("name"):
            raise where.error("name", "the service account's name")
        return ServiceAccountRecord(
            name=str(entry["name"]),
            purpose=_optional_text(entry, "purpose", where),
            owner=_ref(_optional_text(entry, "owner", where)),
            status=_optional_text(entry, "status", where),
            attributes=_dict(entry, "attributes", where),
        )

    def _system(self, entry: dict[str, Any], where: Where) -> SystemRecord:
        if not entry.get("name"):
            raise where.error("name", "the system's name")
        return SystemRecord(
            name=str(entry["name"]),
            category=_optional_text(entry, "category", where),
            status=_optional_text(entry, "status", where),
            owner=_ref(_optional_text(entry, "owner", where)),
            rotation_max_age_days=_optional_int(entry, "rotation_max_age_days", where),
            attributes=_dict(entry, "attributes", where),
        )

    def _credential(self, entry: dict[str, Any], where: Where) -> CredentialRecord:
        source_id = _optional_text(entry, "source_id", where)
        if not source_id:
            raise where.error("source_id", "the credential's id in its source")
        values: dict[str, Any] = {
            "name": _optional_text(entry, "name", where) or source_id,
            "kind": _choice(entry, "kind", KINDS, CredentialKind.OTHER, where),
            "privilege": _choice(
                entry, "privilege", PRIVILEGES, Privilege.UNKNOWN, where
            ),
            "status": _choice(
                entry, "status", STATUSES, CredentialStatus.ACTIVE, where
            ),
            "scopes": as_text_list(entry.get("scopes"), where, "scopes"),
            "secret_hint": _optional_text(entry, "secret_hint", where),
            "fingerprint": _optional_text(entry, "fingerprint", where),
        }
        insert_only: dict[str, Any] = {}
        for field in DATETIME_FIELDS:
            parsed = parse_datetime(entry.get(field), where, field)
            if field == "first_seen_at":
                if parsed is not None:
                    insert_only[field] = parsed
            else:
                values[field] = parsed
        return CredentialRecord(
            source=_optional_text(entry, "source", where) or "native",
            source_id=source_id,
            system=_optional_text(entry, "system", where),
            values=values,
            attributes=_dict(entry, "attributes", where),
            created_by=_ref(_optional_text(entry, "created_by", where)),
            owner=_ref(_optional_text(entry, "owner", where)),
            holder_person=_ref(_optional_text(entry, "holder_person", where)),
            holder_service_account=_optional_text(
                entry, "holder_service_account", where
            ),
            insert_only=insert_only,
        )


IMPORTERS = (NativeImporter,)
