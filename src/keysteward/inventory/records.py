"""Records that importers produce, resolved against the store later.

Importers never touch the database. They turn a file into a ParsedBatch, and
``inventory.services`` links the people and service accounts it names,
upserts the credentials and retires the ones that vanished.
"""

from dataclasses import dataclass, field
from datetime import date
from typing import Any

# Credential columns an importer may set. A field that a record leaves out
# keeps its stored value, so two exports of the same credential that know
# different things (a listing and a last-used report) merge instead of
# erasing each other.
CREDENTIAL_FIELDS = frozenset(
    {
        "name",
        "kind",
        "scopes",
        "privilege",
        "created_at",
        "last_rotated_at",
        "last_used_at",
        "expires_at",
        "status",
        "secret_hint",
        # Only the native format carries a fingerprint; importers of provider
        # exports never see secret values.
        "fingerprint",
    }
)
MAX_HINT_LENGTH = 8


@dataclass(frozen=True)
class PersonRef:
    """A person as an export names them: by email, by a login on a provider
    (``provider`` and ``account_id``), or only by name."""

    email: str | None = None
    provider: str | None = None
    account_id: str | None = None
    name: str | None = None

    def describe(self) -> str:
        if self.email:
            return self.email
        if self.provider:
            return f"{self.provider}:{self.account_id}"
        return self.name or "unnamed person"


@dataclass
class PersonRecord:
    """One row of the people roster."""

    email: str
    name: str
    status: str
    departed_on: date | None = None
    manager: str | None = None
    # (provider, account id) pairs, such as ("github", "alice-example").
    accounts: list[tuple[str, str]] = field(default_factory=list)
    attributes: dict[str, Any] = field(default_factory=dict)
    line: int | None = None


@dataclass
class ServiceAccountRecord:
    name: str
    purpose: str | None = None
    owner: PersonRef | None = None
    status: str | None = None
    attributes: dict[str, Any] = field(default_factory=dict)


@dataclass
class SystemRecord:
    name: str
    category: str | None = None
    status: str | None = None
    owner: PersonRef | None = None
    rotation_max_age_days: int | None = None
    attributes: dict[str, Any] = field(default_factory=dict)


@dataclass
class CredentialRecord:
    """One credential from an export.

    ``values`` holds only the columns the export reports (keys from
    CREDENTIAL_FIELDS). ``merge_keys`` are alternative matches tried when no
    stored credential has this ``source_id``: each is a dict of column or
    attribute names to values that must all be equal.
    """

    source: str
    source_id: str
    system: str | None
    values: dict[str, Any]
    attributes: dict[str, Any] = field(default_factory=dict)
    created_by: PersonRef | None = None
    owner: PersonRef | None = None
    holder_person: PersonRef | None = None
    holder_service_account: str | None = None
    export_scope: str | None = None
    merge_keys: list[dict[str, Any]] = field(default_factory=list)
    # Columns set only when the credential is created, never on update.
    insert_only: dict[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        unknown = set(self.values) - CREDENTIAL_FIELDS
        if unknown:
            raise ValueError(f"unknown credential fields: {sorted(unknown)}")
        hint = self.values.get("secret_hint")
        if hint is not None and len(hint) > MAX_HINT_LENGTH:
            self.values["secret_hint"] = hint[-MAX_HINT_LENGTH:]


@dataclass
class CredentialPatch:
    """A partial update to a credential that another export created.

    ``match`` lists alternative matches, tried in order, each shaped like one
    of ``CredentialRecord.merge_keys`` ("source_id" is the column).
    ``keep_newest`` lists datetime fields that only move forward, such as
    last_used_at from an activity report.
    """

    source: str
    match: list[dict[str, Any]]
    values: dict[str, Any]
    attributes: dict[str, Any] = field(default_factory=dict)
    where: str = ""
    keep_newest: frozenset[str] = frozenset({"last_used_at"})
    # Raise an error instead of skipping when nothing matches.
    required: bool = False
    # Add a warning to the report when nothing matches and it is not required.
    warn_if_unmatched: bool = True
    # Update every credential that matches, such as all keys of one IAM user.
    match_all: bool = False
    ambiguity_hint: str = ""


@dataclass
class ParsedBatch:
    """Everything one file contributes to an import."""

    file: str
    format: str
    source: str
    people: list[PersonRecord] = field(default_factory=list)
    person_links: list[tuple[PersonRef, PersonRef]] = field(default_factory=list)
    systems: list[SystemRecord] = field(default_factory=list)
    service_accounts: list[ServiceAccountRecord] = field(default_factory=list)
    credentials: list[CredentialRecord] = field(default_factory=list)
    patches: list[CredentialPatch] = field(default_factory=list)
    # Export scopes this file lists completely; a stored credential of this
    # source that was listed under one of them and is missing now is retired.
    complete_scopes: set[str] = field(default_factory=set)
    # An empty listing that names no scope: it lists the source's only stored
    # scope completely, and is rejected when the store has several.
    lists_whole_source: bool = False
    warnings: list[str] = field(default_factory=list)
    # The native format carries exact row timestamps that must survive.
    native: bool = False
