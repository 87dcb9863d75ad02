"""The hand-kept credential spreadsheet, as CSV or XLSX.

No standard layout exists, so columns are matched by common names ("owner",
"owner email", "last rotated", "rotated on", "expires", ...). Columns that
match nothing are kept in the credential's attributes under their header.
Columns that would hold a secret value ("secret", "password", "token", ...)
are dropped unread.
"""

import re
from datetime import datetime
from typing import Any

from keysteward.credentials.models import CredentialKind, CredentialStatus, Privilege
from keysteward.inventory.catalog import canonical_system
from keysteward.inventory.importers.base import Importer, LoadedFile
from keysteward.inventory.parsing import (
    NEVER_MARKERS,
    Row,
    Where,
    detect_dayfirst,
    map_columns,
    normalize_header,
    parse_datetime,
    redact_url,
    text,
)
from keysteward.inventory.records import CredentialRecord, ParsedBatch, PersonRef
from keysteward.logging import redact

COLUMNS: dict[str, tuple[str, ...]] = {
    "source_id": (
        "credential id",
        "id",
        "key id",
        "ref",
        "reference",
        "credential ref",
    ),
    "name": ("credential name", "name", "credential", "key name", "title"),
    "system": (
        "system",
        "service",
        "platform",
        "provider",
        "vendor",
        "application",
        "app",
    ),
    "kind": ("credential type", "type", "kind", "credential kind"),
    "scopes": ("accesses", "scopes", "scope", "permissions", "access"),
    "privilege": ("privilege level", "privilege", "access level", "role"),
    "identity_kind": ("identity kind", "identity type", "account type", "identity"),
    "owner": ("owner email", "owner", "owned by", "responsible", "owner e mail"),
    "created_by": ("created by", "creator", "issued by"),
    "created_at": ("created at", "created", "created on", "creation date", "issued on"),
    "last_rotated_at": (
        "last rotated at",
        "last rotated",
        "rotated on",
        "rotated",
        "last rotation",
        "rotated at",
    ),
    "last_used_at": ("last used at", "last used", "last use", "last activity"),
    "expires_at": (
        "expires at",
        "expires",
        "expiry",
        "expiration",
        "expiration date",
        "expiry date",
        "valid until",
        "expires on",
    ),
    "secret_hint": ("secret hint", "hint", "last four", "last 4"),
    "stored_in": ("stored in", "location", "storage", "vault path", "where stored"),
    "used_by": ("used by", "consumers", "automation", "used in", "automations"),
    "status": ("status", "state"),
    "endpoint": ("url", "endpoint", "webhook url", "connection string"),
    "holder": ("service account", "holder", "held by"),
    "observed_privilege": ("observed privilege", "privilege used", "used privilege"),
    "used_scopes": ("used scopes", "scopes used", "exercised scopes"),
}
SECRET_HEADERS = frozenset(
    {
        "secret",
        "secret value",
        "password",
        "token",
        "token value",
        "api key",
        "key value",
        "value",
        "key",
        "private key",
        "client secret",
    }
)
DATE_FIELDS = ("created_at", "last_rotated_at", "last_used_at", "expires_at")
KINDS = {
    "api key": CredentialKind.API_KEY,
    "access key": CredentialKind.ACCESS_KEY,
    "pat": CredentialKind.PERSONAL_ACCESS_TOKEN,
    "personal access token": CredentialKind.PERSONAL_ACCESS_TOKEN,
    "fine grained pat": CredentialKind.PERSONAL_ACCESS_TOKEN,
    "classic pat": CredentialKind.PERSONAL_ACCESS_TOKEN,
    "webhook": CredentialKind.WEBHOOK_URL,
    "webhook url": CredentialKind.WEBHOOK_URL,
    "oauth": CredentialKind.OAUTH_TOKEN,
    "oauth token": CredentialKind.OAUTH_TOKEN,
    "private app token": CredentialKind.API_KEY,
    "bot token": CredentialKind.OAUTH_TOKEN,
    "service account key": CredentialKind.SERVICE_ACCOUNT_KEY,
    "ssh key": CredentialKind.SSH_KEY,
    "certificate": CredentialKind.CERTIFICATE,
    "password": CredentialKind.PASSWORD,
    "connection string": CredentialKind.CONNECTION_STRING,
    "app installation": CredentialKind.APP_INSTALLATION,
}
PRIVILEGES = {
    "read": Privilege.READ,
    "read only": Privilege.READ,
    "readonly": Privilege.READ,
    "viewer": Privilege.READ,
    "write": Privilege.WRITE,
    "read write": Privilege.WRITE,
    "editor": Privilege.WRITE,
    "admin": Privilege.ADMIN,
    "administrator": Privilege.ADMIN,
    "owner": Privilege.ADMIN,
    "full": Privilege.ADMIN,
    "full access": Privilege.ADMIN,
    "unknown": Privilege.UNKNOWN,
}
STATUSES = {
    "active": CredentialStatus.ACTIVE,
    "in use": CredentialStatus.ACTIVE,
    "inactive": CredentialStatus.INACTIVE,
    "disabled": CredentialStatus.INACTIVE,
    "expired": CredentialStatus.EXPIRED,
    "revoked": CredentialStatus.REVOKED,
    "deleted": CredentialStatus.REVOKED,
    "retired": CredentialStatus.RETIRED,
}
IDENTITY_KINDS = {
    "personal": "person",
    "person": "person",
    "user": "person",
    "human": "person",
    "service account": "service_account",
    "service": "service_account",
    "bot": "service_account",
    "system": "system",
}
LIST_SEPARATOR = re.compile(r"\s*[,;\n]\s*")


def split_list(value: str | None) -> list[str]:
    if value is None:
        return []
    return [part for part in LIST_SEPARATOR.split(value) if part]


def person_ref(value: str | None) -> PersonRef | None:
    """Return a reference for an email, or for a name when there is no '@'."""
    if value is None:
        return None
    if "@" in value:
        return PersonRef(email=value.lower())
    return PersonRef(name=value)


class CredentialSheetImporter(Importer):
    format = "sheet.credentials"
    source = "sheet"
    order = 60

    def matches(self, loaded: LoadedFile) -> bool:
        if loaded.table is None:
            return False
        mapped, _ = map_columns(loaded.table.headers, COLUMNS)
        return "system" in mapped and ("name" in mapped or "source_id" in mapped)

    def parse(self, loaded: LoadedFile) -> ParsedBatch:
        assert loaded.table is not None
        batch = self.new_batch(loaded)
        mapped, unknown = map_columns(loaded.table.headers, COLUMNS)
        kept = [h for h in unknown if normalize_header(h) not in SECRET_HEADERS]
        dropped = [h for h in unknown if normalize_header(h) in SECRET_HEADERS]
        if dropped:
            batch.warnings.append(
                f"{loaded.name}: ignored column(s) {', '.join(dropped)} because they "
                "may hold secret values; keep secrets in the vault, not the sheet"
            )

        dayfirst = {
            field: detect_dayfirst(row.get(mapped[field]) for row in loaded.table.rows)
            for field in DATE_FIELDS
            if field in mapped
        }

        scope = f"file:{loaded.name}"
        batch.complete_scopes.add(scope)
        seen: set[str] = set()
        for row in loaded.table.rows:
            where = Where(loaded.name, f"line {row.line}")
            reader = _RowReader(row, mapped, kept, where, dayfirst, loaded.name)
            record = reader.read()
            batch.warnings.extend(reader.warnings)
            if record.source_id in seen:
                raise where.error(
                    mapped.get("source_id", "name"),
                    "a credential id used once in the sheet",
                    record.source_id,
                )
            seen.add(record.source_id)
            record.export_scope = scope
            batch.credentials.append(record)
        return batch


class _RowReader:
    """Turns one sheet row into a CredentialRecord."""

    def __init__(
        self,
        row: Row,
        mapped: dict[str, str],
        kept: list[str],
        where: Where,
        dayfirst: dict[str, bool],
        file: str,
    ) -> None:
        self.row = row
        self.mapped = mapped
        self.kept = kept
        self.where = where
        self.dayfirst = dayfirst
        self.file = file
        self.warnings: list[str] = []

    def cell(self, field: str) -> Any:
        header = self.mapped.get(field)
        return None if header is None else self.row.get(header)

    def text(self, field: str) -> str | None:
        return text(self.cell(field))

    def read(self) -> CredentialRecord:
        system_name = self.text("system")
        if system_name is None:
            raise self.where.error(
                self.mapped["system"], "the system's name, such as AWS"
            )
        system = canonical_system(system_name)
        name = self.text("name") or self.text("source_id")
        source_id = self.text("source_id") or f"{system}:{name}"

        values: dict[str, Any] = {
            "name": name,
            "kind": self._choice(
                "kind", KINDS, CredentialKind.OTHER, "a credential type"
            ),
            "scopes": split_list(self.text("scopes")),
            "privilege": self._choice(
                "privilege", PRIVILEGES, Privilege.UNKNOWN, "read, write or admin"
            ),
            "status": self._choice(
                "status",
                STATUSES,
                CredentialStatus.ACTIVE,
                "active, inactive, expired or revoked",
            ),
            "secret_hint": self.text("secret_hint"),
        }
        attributes: dict[str, Any] = {
            "source_file": self.file,
            "source_line": self.row.line,
        }
        for field in DATE_FIELDS:
            if field in self.mapped:
                values[field] = self._date(field)
        self._usage(values, attributes)

        record = CredentialRecord(
            source="sheet",
            source_id=source_id,
            system=system,
            values=values,
            attributes=attributes,
            owner=person_ref(self.text("owner")),
            created_by=person_ref(self.text("created_by")),
        )

        self._identity(record)
        self._extras(record)
        return record

    def _choice(
        self, field: str, choices: dict[str, Any], default: Any, expected: str
    ) -> Any:
        raw = self.text(field)
        if raw is None:
            return default
        key = normalize_header(raw)
        if key in choices:
            return choices[key]
        if key.replace(" ", "_") in {str(v) for v in choices.values()}:
            return key.replace(" ", "_")
        if field == "kind":
            return CredentialKind.OTHER
        raise self.where.error(self.mapped[field], expected, raw)

    def _date(self, field: str) -> datetime | None:
        raw = self.cell(field)
        if isinstance(raw, str) and raw.strip().lower() in NEVER_MARKERS:
            return None
        return parse_datetime(
            raw, self.where, self.mapped[field], self.dayfirst.get(field, False)
        )

    def _usage(self, values: dict[str, Any], attributes: dict[str, Any]) -> None:
        if "last_used_at" not in self.mapped:
            attributes["usage_known"] = False
            return
        raw = self.cell("last_used_at")
        marked_never = isinstance(raw, str) and raw.strip().lower() in NEVER_MARKERS
        # An empty cell means the use was not recorded, not that it never happened.
        attributes["usage_known"] = (
            marked_never or values.get("last_used_at") is not None
        )

    def _identity(self, record: CredentialRecord) -> None:
        raw = self.text("identity_kind")
        identity = IDENTITY_KINDS.get(normalize_header(raw)) if raw else None
        if raw and identity is None:
            identity = normalize_header(raw).replace(" ", "_")
        if identity:
            record.attributes["identity_kind"] = identity
        holder = self.text("holder")
        if holder:
            record.holder_service_account = holder
        elif identity == "person" and record.owner is not None:
            record.holder_person = record.owner

    def _extras(self, record: CredentialRecord) -> None:
        stored_in = self.text("stored_in")
        if stored_in:
            record.attributes["stored_in"] = stored_in
        used_by = split_list(self.text("used_by"))
        if used_by:
            record.attributes["used_by"] = used_by
            record.attributes["used_by_automation"] = True
        observed = self._choice(
            "observed_privilege", PRIVILEGES, None, "read, write or admin"
        )
        if observed and observed != Privilege.UNKNOWN:
            record.attributes["observed_privilege"] = observed
        if "used_scopes" in self.mapped:
            record.attributes["used_scopes"] = split_list(self.text("used_scopes"))
        endpoint = self.text("endpoint")
        if endpoint:
            webhook = record.values.get("kind") == CredentialKind.WEBHOOK_URL
            safe, embedded = redact_url(endpoint, webhook=webhook)
            record.attributes["endpoint"] = safe
            record.attributes["embedded_secret"] = embedded
        for header in self.kept:
            value = self.row.get(header)
            if isinstance(value, datetime):
                value = value.isoformat()
            value = text(value) if not isinstance(value, int | float) else value
            if isinstance(value, str) and redact(value) != value:
                # A free-text cell (notes, comments) can carry a pasted key.
                self.warnings.append(
                    f"{self.where.file}: {self.where.position}: column {header!r} "
                    "looks like it contains a secret and was not stored; move the "
                    "secret to the vault"
                )
                continue
            if value is not None:
                record.attributes[header] = value


IMPORTERS = (CredentialSheetImporter,)
