"""The policy as plain values, and its YAML form.

A ``Policy`` is what the engine compiles and what ``policy plan`` compares:
roles (with permissions and included roles), groups, assignments of roles
to principals and deny rules. It is the same whether it came from a YAML
file or from the store.
"""

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime

EVERYONE = "*"


@dataclass(frozen=True)
class RoleSpec:
    name: str
    permissions: tuple[str, ...] = ()
    includes: tuple[str, ...] = ()
    description: str | None = None


@dataclass(frozen=True)
class GroupSpec:
    name: str
    members: tuple[str, ...] = ()
    description: str | None = None


@dataclass(frozen=True)
class AssignmentSpec:
    """A role given to a principal (``kind:name``), optionally until a time."""

    principal: str
    role: str
    expires_at: datetime | None = None


@dataclass(frozen=True)
class DenySpec:
    """A deny rule, attached to a role, to a principal or to everyone.

    ``unless`` maps request context attributes to their approved values: the
    rule does not apply when every listed attribute is present in the context
    with an approved value. A missing attribute leaves the rule in force, so
    the check fails closed.
    """

    permission: str
    role: str | None = None
    principal: str | None = None
    unless: Mapping[str, tuple[str, ...]] = field(default_factory=dict)
    description: str | None = None

    @property
    def target(self) -> str:
        if self.role is not None:
            return f"role:{self.role}"
        return self.principal or EVERYONE


@dataclass(frozen=True)
class Policy:
    roles: Mapping[str, RoleSpec] = field(default_factory=dict)
    groups: Mapping[str, GroupSpec] = field(default_factory=dict)
    assignments: tuple[AssignmentSpec, ...] = ()
    denies: tuple[DenySpec, ...] = ()
