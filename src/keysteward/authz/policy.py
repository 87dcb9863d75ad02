"""The policy as plain values, and its YAML form.

A ``Policy`` is what the engine compiles and what ``policy plan`` compares:
roles (with permissions and included roles), groups, assignments of roles
to principals and deny rules. It is the same whether it came from a YAML
file or from the store.
"""

import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import yaml

from keysteward.authz.errors import (
    InvalidPermissionError,
    InvalidPrincipalError,
    PolicyError,
    RoleCycleError,
)
from keysteward.authz.permissions import PrincipalKind, parse_pattern, parse_principal

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


# -- The YAML form -------------------------------------------------------------
#
#   base: <digest of the store's policy this file was exported from>
#   roles:
#     crm-reader:
#       description: Read CRM records
#       permissions: [hubspot:contacts:read]
#       includes: [other-role]
#   groups:
#     marketing:
#       members: [person:alice@example.com, service_account:svc-mailer]
#   assignments:
#     - {principal: service_account:svc-crm-sync, role: crm-reader,
#        expires: 2026-12-31T00:00:00Z}
#   denies:
#     - {role: contractor, permission: "crm:*:delete", description: ...}
#     - {principal: service_account:svc-agent, permission: tools:shell:invoke,
#        unless: {content_hash: ["sha256:..."]}}

TOP_LEVEL_KEYS = ("base", "roles", "groups", "assignments", "denies")
ROLE_KEYS = ("description", "permissions", "includes")
GROUP_KEYS = ("description", "members")
ASSIGNMENT_KEYS = ("principal", "role", "expires")
DENY_KEYS = ("role", "principal", "permission", "unless", "description")
_NAME_PATTERN = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.@+-]*")
_DIGEST_PATTERN = re.compile(r"[0-9a-f]{64}")


@dataclass(frozen=True)
class PolicyFile:
    """A parsed policy file: its policy and the store digest it was based on."""

    policy: Policy
    base: str | None
    source: str


class _Errors:
    """Collects every problem in a file so one run reports them all."""

    def __init__(self, source: str) -> None:
        self.source = source
        self.messages: list[str] = []
        self.cycle: list[str] | None = None

    def add(self, node: yaml.Node | None, message: str) -> None:
        line = "?" if node is None else str(node.start_mark.line + 1)
        self.messages.append(f"{self.source}:{line}: {message}")

    def raise_if_any(self) -> None:
        if self.messages:
            count = len(self.messages)
            header = f"{count} error{'s' if count > 1 else ''} in the policy file:"
            message = "\n".join([header, *self.messages])
            if self.cycle is not None:
                raise RoleCycleError(message, self.cycle)
            raise PolicyError(message)


def _mapping(
    node: yaml.Node, what: str, keys: tuple[str, ...], errors: _Errors
) -> dict[str, tuple[yaml.Node, yaml.Node]]:
    """Return a mapping node's entries by key, reporting unknown or repeated keys."""
    if not isinstance(node, yaml.MappingNode):
        errors.add(node, f"{what} must be a mapping of {', '.join(keys) or 'names'}")
        return {}
    entries: dict[str, tuple[yaml.Node, yaml.Node]] = {}
    for key_node, value_node in node.value:
        key = key_node.value if isinstance(key_node, yaml.ScalarNode) else None
        if not isinstance(key, str) or key == "":
            errors.add(key_node, f"{what} has a key that is not a plain name")
            continue
        if key in entries:
            errors.add(key_node, f"{what} repeats key {key!r}; keep one")
            continue
        if keys and key not in keys:
            errors.add(
                key_node,
                f"unknown key {key!r} in {what}; expected one of {', '.join(keys)}",
            )
            continue
        entries[key] = (key_node, value_node)
    return entries


def _string(node: yaml.Node, what: str, errors: _Errors) -> str | None:
    if not isinstance(node, yaml.ScalarNode) or node.tag != "tag:yaml.org,2002:str":
        if isinstance(node, yaml.ScalarNode) and node.tag != "tag:yaml.org,2002:null":
            return str(node.value)
        errors.add(node, f"{what} must be a string")
        return None
    return str(node.value)


def _strings(
    node: yaml.Node, what: str, errors: _Errors
) -> list[tuple[str, yaml.Node]]:
    if isinstance(node, yaml.ScalarNode) and node.tag == "tag:yaml.org,2002:null":
        return []
    if not isinstance(node, yaml.SequenceNode):
        errors.add(node, f"{what} must be a list of strings")
        return []
    found = []
    for item in node.value:
        text = _string(item, f"each item of {what}", errors)
        if text is not None:
            found.append((text, item))
    return found


def _check_permission(text: str, node: yaml.Node, errors: _Errors) -> bool:
    try:
        parse_pattern(text)
    except InvalidPermissionError as exc:
        errors.add(node, str(exc))
        return False
    return True


def _check_principal(text: str, node: yaml.Node, errors: _Errors) -> bool:
    try:
        parse_principal(text)
    except InvalidPrincipalError as exc:
        errors.add(node, str(exc))
        return False
    return True


def _check_name(text: str, node: yaml.Node, what: str, errors: _Errors) -> bool:
    if len(text) > 200 or not _NAME_PATTERN.fullmatch(text):
        errors.add(
            node,
            f"invalid {what} name {text!r}: use ASCII letters, digits, '.', '_', "
            "'@', '+' or '-' (at most 200 characters)",
        )
        return False
    return True


def _parse_roles(
    node: yaml.Node, errors: _Errors, role_lines: dict[str, yaml.Node]
) -> dict[str, RoleSpec]:
    roles: dict[str, RoleSpec] = {}
    for name, (key_node, value_node) in _mapping(node, "roles", (), errors).items():
        if not _check_name(name, key_node, "role", errors):
            continue
        role_lines[name] = key_node
        fields = _mapping(value_node, f"role {name!r}", ROLE_KEYS, errors)
        permissions: list[str] = []
        if "permissions" in fields:
            for text, item in _strings(
                fields["permissions"][1], f"permissions of role {name!r}", errors
            ):
                if _check_permission(text, item, errors):
                    permissions.append(text)
        includes = []
        if "includes" in fields:
            includes = [
                (text, item)
                for text, item in _strings(
                    fields["includes"][1], f"includes of role {name!r}", errors
                )
            ]
        description = None
        if "description" in fields:
            description = _string(fields["description"][1], "description", errors)
        roles[name] = RoleSpec(
            name,
            tuple(permissions),
            tuple(text for text, _ in includes),
            description,
        )
        for text, item in includes:
            role_lines.setdefault(f"{name}>{text}", item)
    return roles


def _parse_groups(node: yaml.Node, errors: _Errors) -> dict[str, GroupSpec]:
    groups: dict[str, GroupSpec] = {}
    for name, (key_node, value_node) in _mapping(node, "groups", (), errors).items():
        if not _check_name(name, key_node, "group", errors):
            continue
        fields = _mapping(value_node, f"group {name!r}", GROUP_KEYS, errors)
        members = []
        if "members" in fields:
            for text, item in _strings(
                fields["members"][1], f"members of group {name!r}", errors
            ):
                if not _check_principal(text, item, errors):
                    continue
                if text.startswith(f"{PrincipalKind.GROUP}:"):
                    errors.add(
                        item,
                        f"group {name!r} lists {text}: groups cannot contain groups; "
                        "list its members instead",
                    )
                    continue
                members.append(text)
        description = None
        if "description" in fields:
            description = _string(fields["description"][1], "description", errors)
        groups[name] = GroupSpec(name, tuple(members), description)
    return groups


def _parse_expiry(node: yaml.Node, errors: _Errors) -> datetime | None:
    if isinstance(node, yaml.ScalarNode) and node.tag == "tag:yaml.org,2002:null":
        return None
    text = node.value if isinstance(node, yaml.ScalarNode) else None
    try:
        value = datetime.fromisoformat(str(text))
    except ValueError:
        errors.add(
            node,
            f"invalid expires {text!r}: use an ISO 8601 time such as "
            "2026-12-31T00:00:00Z",
        )
        return None
    if value.tzinfo is None:
        errors.add(
            node,
            f"expires {text!r} has no time zone; add Z or an offset such as +02:00",
        )
        return None
    return value.astimezone(UTC)


def _parse_assignments(
    node: yaml.Node, errors: _Errors
) -> list[tuple[AssignmentSpec, yaml.Node]]:
    if not isinstance(node, yaml.SequenceNode):
        errors.add(node, "assignments must be a list of {principal, role} mappings")
        return []
    found = []
    for item in node.value:
        fields = _mapping(item, "an assignment", ASSIGNMENT_KEYS, errors)
        if not fields:
            continue
        missing = [key for key in ("principal", "role") if key not in fields]
        if missing:
            errors.add(item, f"assignment is missing {' and '.join(missing)}")
            continue
        principal = _string(fields["principal"][1], "principal", errors)
        role = _string(fields["role"][1], "role", errors)
        expires = None
        if "expires" in fields:
            expires = _parse_expiry(fields["expires"][1], errors)
        if principal is None or role is None:
            continue
        if not _check_principal(principal, fields["principal"][1], errors):
            continue
        found.append((AssignmentSpec(principal, role, expires), item))
    return found


def _parse_unless(node: yaml.Node, errors: _Errors) -> dict[str, tuple[str, ...]]:
    unless: dict[str, tuple[str, ...]] = {}
    for name, (_key, value_node) in _mapping(node, "unless", (), errors).items():
        values = _strings(value_node, f"approved values of {name!r}", errors)
        if not values:
            errors.add(value_node, f"unless {name!r} needs at least one approved value")
            continue
        unless[name] = tuple(text for text, _ in values)
    return unless


def _parse_denies(node: yaml.Node, errors: _Errors) -> list[tuple[DenySpec, yaml.Node]]:
    if not isinstance(node, yaml.SequenceNode):
        errors.add(node, "denies must be a list of {permission, role|principal}")
        return []
    found = []
    for item in node.value:
        fields = _mapping(item, "a deny rule", DENY_KEYS, errors)
        if not fields:
            continue
        if "permission" not in fields:
            errors.add(item, "deny rule is missing permission")
            continue
        if "role" in fields and "principal" in fields:
            errors.add(
                item,
                "deny rule names both role and principal; split it into two rules",
            )
            continue
        permission = _string(fields["permission"][1], "permission", errors)
        if permission is None:
            continue
        if not _check_permission(permission, fields["permission"][1], errors):
            continue
        role = principal = None
        if "role" in fields:
            role = _string(fields["role"][1], "role", errors)
        if "principal" in fields:
            principal = _string(fields["principal"][1], "principal", errors)
            named = principal is not None and principal != EVERYONE
            if named and not _check_principal(
                str(principal), fields["principal"][1], errors
            ):
                continue
        if principal == EVERYONE:
            principal = None
        unless = {}
        if "unless" in fields:
            unless = _parse_unless(fields["unless"][1], errors)
        description = None
        if "description" in fields:
            description = _string(fields["description"][1], "description", errors)
        found.append((DenySpec(permission, role, principal, unless, description), item))
    return found


def find_role_cycle(roles: Mapping[str, RoleSpec]) -> list[str] | None:
    """Return one include cycle as a path that ends where it starts, or None."""
    state: dict[str, int] = {}  # 1 while on the current path, 2 once finished
    path: list[str] = []

    def visit(name: str) -> list[str] | None:
        state[name] = 1
        path.append(name)
        for included in roles[name].includes if name in roles else ():
            if state.get(included) == 1:
                return [*path[path.index(included) :], included]
            if included not in state:
                cycle = visit(included)
                if cycle:
                    return cycle
        path.pop()
        state[name] = 2
        return None

    for name in sorted(roles):
        if name not in state:
            cycle = visit(name)
            if cycle:
                return cycle
    return None


def _check_references(
    policy: Policy,
    assignments: list[tuple[AssignmentSpec, yaml.Node]],
    denies: list[tuple[DenySpec, yaml.Node]],
    role_lines: dict[str, yaml.Node],
    errors: _Errors,
) -> None:
    for role in policy.roles.values():
        for included in role.includes:
            if included not in policy.roles:
                errors.add(
                    role_lines.get(f"{role.name}>{included}"),
                    f"role {role.name!r} includes unknown role {included!r}; "
                    "define it under roles or remove the include",
                )
    for assignment, node in assignments:
        if assignment.role not in policy.roles:
            errors.add(
                node,
                f"assignment of {assignment.principal} names unknown role "
                f"{assignment.role!r}; define it under roles",
            )
        _check_group_defined(assignment.principal, node, policy, errors)
    for deny, node in denies:
        if deny.role is not None and deny.role not in policy.roles:
            errors.add(
                node,
                f"deny rule names unknown role {deny.role!r}; define it under roles",
            )
        if deny.principal is not None:
            _check_group_defined(deny.principal, node, policy, errors)
    cycle = find_role_cycle(policy.roles)
    if cycle:
        errors.cycle = cycle
        errors.add(
            role_lines.get(cycle[0]),
            f"roles include each other in a cycle: {' -> '.join(cycle)}; "
            "remove one of these includes",
        )


def _check_group_defined(
    principal: str, node: yaml.Node, policy: Policy, errors: _Errors
) -> None:
    kind, _, name = principal.partition(":")
    if kind == PrincipalKind.GROUP and name not in policy.groups:
        errors.add(
            node, f"{principal} is not defined; add it under groups with its members"
        )


def parse_policy_text(text: str, source: str = "<policy>") -> PolicyFile:
    """Parse and validate a policy document.

    Raises PolicyError listing every problem as ``source:line: message``.
    """
    errors = _Errors(source)
    try:
        root = yaml.compose(text, Loader=yaml.SafeLoader)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        line = "?" if mark is None else str(mark.line + 1)
        problem = getattr(exc, "problem", None) or str(exc)
        raise PolicyError(f"{source}:{line}: invalid YAML: {problem}") from None
    if root is None:
        return PolicyFile(Policy(), None, source)

    fields = _mapping(root, "the policy file", TOP_LEVEL_KEYS, errors)
    base = None
    if "base" in fields:
        base = _string(fields["base"][1], "base", errors)
        if base is not None and not _DIGEST_PATTERN.fullmatch(base):
            errors.add(
                fields["base"][1],
                f"invalid base {base!r}: expected the 64-hex digest written by "
                "'keysteward policy export'",
            )
    role_lines: dict[str, yaml.Node] = {}
    roles = {}
    if "roles" in fields:
        roles = _parse_roles(fields["roles"][1], errors, role_lines)
    groups = {}
    if "groups" in fields:
        groups = _parse_groups(fields["groups"][1], errors)
    assignments = []
    if "assignments" in fields:
        assignments = _parse_assignments(fields["assignments"][1], errors)
    denies = []
    if "denies" in fields:
        denies = _parse_denies(fields["denies"][1], errors)

    policy = Policy(
        roles=roles,
        groups=groups,
        assignments=tuple(spec for spec, _ in assignments),
        denies=tuple(spec for spec, _ in denies),
    )
    _check_references(policy, assignments, denies, role_lines, errors)
    errors.raise_if_any()
    return PolicyFile(policy, base, source)


def load_policy_file(path: Path) -> PolicyFile:
    """Read and validate the policy file at ``path``."""
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise PolicyError(f"policy file {path} not found; check the path") from None
    except UnicodeDecodeError as exc:
        raise PolicyError(f"policy file {path} is not valid UTF-8: {exc}") from None
    return parse_policy_text(text, str(path))


def _dump_roles(policy: Policy) -> dict[str, Any]:
    roles: dict[str, Any] = {}
    for name, role in sorted(policy.roles.items()):
        entry: dict[str, Any] = {}
        if role.description:
            entry["description"] = role.description
        entry["permissions"] = sorted(set(role.permissions))
        if role.includes:
            entry["includes"] = sorted(set(role.includes))
        roles[name] = entry
    return roles


def _dump_groups(policy: Policy) -> dict[str, Any]:
    groups: dict[str, Any] = {}
    for name, group in sorted(policy.groups.items()):
        entry: dict[str, Any] = {}
        if group.description:
            entry["description"] = group.description
        entry["members"] = sorted(set(group.members))
        groups[name] = entry
    return groups


def _dump_assignments(policy: Policy) -> list[dict[str, Any]]:
    assignments = []
    ordered = sorted(set(policy.assignments), key=lambda a: (a.principal, a.role))
    for assignment in ordered:
        item: dict[str, Any] = {
            "principal": assignment.principal,
            "role": assignment.role,
        }
        if assignment.expires_at is not None:
            expires = assignment.expires_at.astimezone(UTC)
            item["expires"] = expires.isoformat().replace("+00:00", "Z")
        assignments.append(item)
    return assignments


def _dump_denies(policy: Policy) -> list[dict[str, Any]]:
    denies = []
    for deny in sorted(policy.denies, key=lambda d: (d.target, d.permission)):
        rule: dict[str, Any] = {}
        if deny.role is not None:
            rule["role"] = deny.role
        else:
            rule["principal"] = deny.principal or EVERYONE
        rule["permission"] = deny.permission
        if deny.unless:
            rule["unless"] = {k: list(v) for k, v in sorted(deny.unless.items())}
        if deny.description:
            rule["description"] = deny.description
        denies.append(rule)
    return denies


POLICY_FILE_HEADER = (
    "# keysteward access policy. Edit, then run 'keysteward policy plan FILE'\n"
    "# and 'keysteward policy apply FILE'. 'base' is the digest of the stored\n"
    "# policy this file came from. Apply rejects the file if the store has\n"
    "# changed since.\n"
)


def dump_policy(policy: Policy, base: str | None) -> str:
    """Write ``policy`` as YAML that ``parse_policy_text`` reads back equal."""
    document: dict[str, Any] = {}
    if base is not None:
        document["base"] = base
    document["roles"] = _dump_roles(policy)
    document["groups"] = _dump_groups(policy)
    document["assignments"] = _dump_assignments(policy)
    document["denies"] = _dump_denies(policy)
    body = yaml.safe_dump(
        document, sort_keys=False, allow_unicode=True, default_flow_style=False
    )
    return POLICY_FILE_HEADER + body


_BASE_LINE = re.compile(r"^base:.*$", re.MULTILINE)


def write_base(path: Path, digest: str) -> None:
    """Set the ``base:`` line of the policy file at ``path`` to ``digest``.

    Only that line changes, so comments and layout in the file survive.
    """
    text = path.read_text(encoding="utf-8")
    line = f"base: {digest}"
    if _BASE_LINE.search(text):
        text = _BASE_LINE.sub(line, text, count=1)
    else:
        lines = text.splitlines(keepends=True)
        position = 0
        while position < len(lines) and lines[position].lstrip().startswith("#"):
            position += 1
        lines.insert(position, line + "\n")
        text = "".join(lines)
    path.write_text(text, encoding="utf-8")
