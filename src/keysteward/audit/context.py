"""Plain in-memory views of the inventory that the audit rules read.

The loader builds these from a few bulk queries, so the rules never touch
the database and a 100,000-credential audit stays in memory.
"""

from dataclasses import dataclass, field
from datetime import date, datetime
from typing import TYPE_CHECKING, Any

from keysteward.audit.config import AuditConfig, Thresholds
from keysteward.credentials.models import Privilege

if TYPE_CHECKING:
    from keysteward.audit.departures import DepartedReader

PRIVILEGE_RANK: dict[str, int] = {
    Privilege.UNKNOWN: 0,
    Privilege.READ: 1,
    Privilege.WRITE: 2,
    Privilege.ADMIN: 3,
}


@dataclass(frozen=True, slots=True)
class PersonView:
    id: int
    name: str
    email: str
    status: str
    departed_on: date | None

    def departed_by(self, as_of: date) -> bool:
        """Return whether the person had left on ``as_of``.

        A departure date decides when it is known; otherwise the status does.
        """
        if self.departed_on is not None:
            return self.departed_on <= as_of
        return self.status == "departed"


@dataclass(frozen=True, slots=True)
class ServiceAccountView:
    id: int
    name: str
    status: str
    owner: PersonView | None


@dataclass(frozen=True, slots=True)
class SystemView:
    id: int
    name: str
    status: str
    rotation_max_age_days: int | None
    attributes: dict[str, Any]


@dataclass(slots=True)
class CredentialView:
    """One active credential with its people, holder and system resolved."""

    id: int
    name: str
    kind: str
    privilege: str
    scopes: list[str]
    system: SystemView | None
    owner: PersonView | None
    created_by: PersonView | None
    holder_person: PersonView | None
    holder_service_account: ServiceAccountView | None
    created_at: datetime | None
    last_rotated_at: datetime | None
    last_used_at: datetime | None
    expires_at: datetime | None
    source: str
    source_id: str
    fingerprint: str | None
    attributes: dict[str, Any] = field(default_factory=dict)

    @property
    def system_name(self) -> str:
        return self.system.name if self.system else "unknown"

    @property
    def privilege_rank(self) -> int:
        return PRIVILEGE_RANK.get(self.privilege, 0)

    @property
    def is_admin(self) -> bool:
        return self.privilege == Privilege.ADMIN

    @property
    def usage_known(self) -> bool:
        return self.attributes.get("usage_known") is True

    @property
    def accountable_person(self) -> PersonView | None:
        """Return the owner, else the owner of the holding service account."""
        if self.owner is not None:
            return self.owner
        if self.holder_service_account is not None:
            return self.holder_service_account.owner
        return None

    @property
    def rotation_reference(self) -> datetime | None:
        """Return when the current secret was issued: last rotation, else creation."""
        return self.last_rotated_at or self.created_at


@dataclass(frozen=True, slots=True)
class DuplicatePlace:
    """Another active credential that carries the same fingerprint."""

    id: int
    name: str
    system_name: str


@dataclass
class AuditContext:
    """Shared rule input: the audit date, the thresholds and inventory-wide facts."""

    as_of: datetime
    config: AuditConfig
    # Active credentials per fingerprint, over the whole inventory.
    fingerprint_holders: dict[str, list[DuplicatePlace]] = field(default_factory=dict)
    # Credential id -> departed people who read its vault secret before leaving.
    departed_readers: dict[int, list["DepartedReader"]] = field(default_factory=dict)
    _thresholds: dict[str, Thresholds] = field(default_factory=dict)

    @property
    def as_of_date(self) -> date:
        return self.as_of.date()

    def thresholds(self, credential: CredentialView) -> Thresholds:
        """Return the thresholds for the credential's system, cached per system."""
        key = credential.system_name
        cached = self._thresholds.get(key)
        if cached is None:
            system = credential.system
            cached = self.config.thresholds_for(
                system.name if system else None,
                system.rotation_max_age_days if system else None,
            )
            self._thresholds[key] = cached
        return cached

    def days_since(self, moment: datetime | None) -> int | None:
        """Return whole days from ``moment`` to the audit date, or None."""
        if moment is None:
            return None
        return (self.as_of - moment).days
