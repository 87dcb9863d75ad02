"""The stored policy: reading it, comparing it with a file, applying a file.

The store keeps the policy in the foundation's role tables plus this
concept's own (role includes, groups, deny rules). ``load_store_policy``
turns those rows into a ``Policy``, and ``plan_policy`` compares two
policies. ``apply_policy`` makes the store equal to a file's policy in one
transaction, bumps the policy version and records an event.
"""

import hashlib
import json
import logging
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import delete, select
from sqlalchemy.orm import Session, selectinload

from keysteward.authz.errors import StalePolicyError, UnknownPrincipalError
from keysteward.authz.models import (
    DenyRule,
    Group,
    GroupMember,
    Permission,
    PolicyState,
    Role,
    RoleGrant,
    RoleInclude,
)
from keysteward.authz.permissions import PrincipalKind, parse_pattern
from keysteward.authz.policy import (
    AssignmentSpec,
    DenySpec,
    GroupSpec,
    Policy,
    RoleSpec,
)
from keysteward.clock import as_utc, utcnow
from keysteward.events.services import record_event
from keysteward.identities.errors import DepartedPersonError
from keysteward.identities.models import Person, PersonStatus, ServiceAccount

log = logging.getLogger(__name__)

POLICY_STATE_ID = 1


def read_policy_version(session: Session) -> int:
    """Return the stored policy's version: 0 before the first apply."""
    state = session.get(PolicyState, POLICY_STATE_ID)
    return 0 if state is None else state.version


def mark_policy_changed(session: Session) -> PolicyState:
    """Bump the stored policy version so every compiled index is rebuilt.

    Call it after writing roles, grants, groups or deny rules directly;
    ``apply_policy`` calls it itself. Caches in every process compare this
    version, so a write without it stays invisible to them. On PostgreSQL
    it also sends a notification, delivered when the transaction commits,
    which makes listening processes rebuild at once.
    """
    state = session.get(PolicyState, POLICY_STATE_ID)
    if state is None:
        state = PolicyState(id=POLICY_STATE_ID, version=0, digest="")
        session.add(state)
    state.version += 1
    state.updated_at = utcnow()
    session.flush()
    from keysteward.cluster.notify import notify_policy_changed

    notify_policy_changed(session, state.version)
    return state


def policy_digest(policy: Policy) -> str:
    """Return the SHA-256 hex digest of ``policy``'s canonical JSON form."""
    canonical = json.dumps(
        canonical_policy(policy), sort_keys=True, separators=(",", ":"), default=str
    )
    return hashlib.sha256(canonical.encode()).hexdigest()


def canonical_policy(policy: Policy) -> dict[str, Any]:
    """Return ``policy`` as sorted plain data, equal for equal policies."""
    return {
        "roles": {
            name: {
                "description": role.description,
                "permissions": sorted(set(role.permissions)),
                "includes": sorted(set(role.includes)),
            }
            for name, role in sorted(policy.roles.items())
        },
        "groups": {
            name: {
                "description": group.description,
                "members": sorted(set(group.members)),
            }
            for name, group in sorted(policy.groups.items())
        },
        "assignments": sorted(
            {
                (a.principal, a.role, _iso(a.expires_at) or "")
                for a in policy.assignments
            }
        ),
        "denies": sorted({_deny_key(deny) for deny in policy.denies}),
    }


def _iso(value: Any) -> str | None:
    value = as_utc(value)
    return None if value is None else value.isoformat()


def _deny_key(deny: DenySpec) -> tuple[str, str, str, str]:
    unless = json.dumps(
        {name: sorted(values) for name, values in sorted(deny.unless.items())},
        sort_keys=True,
    )
    return (deny.target, deny.permission, unless, deny.description or "")


class _Names:
    """Principal names by stored id, and ids by name, for one session."""

    def __init__(self, session: Session) -> None:
        self.by_id: dict[tuple[str, int], str] = {}
        self.by_name: dict[str, tuple[str, int]] = {}
        rows: Iterable[tuple[str, int, str]] = [
            *(
                (PrincipalKind.PERSON.value, pid, email)
                for pid, email in session.execute(select(Person.id, Person.email))
            ),
            *(
                (PrincipalKind.SERVICE_ACCOUNT.value, sid, name)
                for sid, name in session.execute(
                    select(ServiceAccount.id, ServiceAccount.name)
                )
            ),
            *(
                (PrincipalKind.GROUP.value, gid, name)
                for gid, name in session.execute(select(Group.id, Group.name))
            ),
        ]
        for kind, row_id, name in rows:
            principal = f"{kind}:{name}"
            self.by_id[(kind, row_id)] = principal
            self.by_name[principal] = (kind, row_id)

    def name_of(self, kind: str, row_id: int) -> str | None:
        found = self.by_id.get((kind, row_id))
        if found is None:
            log.warning(
                "skipping a policy row naming a missing principal",
                extra={"principal_type": kind, "principal_id": row_id},
            )
        return found


def load_store_policy(session: Session) -> Policy:
    """Read the whole stored policy as a ``Policy``."""
    names = _Names(session)
    roles_by_id = {
        role.id: role
        for role in session.scalars(
            select(Role).options(selectinload(Role.permissions))
        )
    }
    includes: dict[int, list[str]] = {}
    for include in session.scalars(select(RoleInclude)):
        included = roles_by_id.get(include.included_role_id)
        if included is not None:
            includes.setdefault(include.role_id, []).append(included.name)
    roles = {
        role.name: RoleSpec(
            name=role.name,
            permissions=tuple(sorted(str(p) for p in role.permissions)),
            includes=tuple(sorted(includes.get(role.id, []))),
            description=role.description,
        )
        for role in roles_by_id.values()
    }

    groups = _load_groups(session, names)
    assignments = []
    for grant in session.scalars(select(RoleGrant)):
        principal = names.name_of(grant.principal_type, grant.principal_id)
        role = roles_by_id.get(grant.role_id)
        if principal is None or role is None:
            continue
        assignments.append(
            AssignmentSpec(principal, role.name, as_utc(grant.expires_at))
        )

    denies = []
    for rule in session.scalars(select(DenyRule)):
        target_role = None
        target_principal = None
        if rule.role_id is not None:
            target_role = roles_by_id[rule.role_id].name
        elif rule.principal_type is not None and rule.principal_id is not None:
            target_principal = names.name_of(rule.principal_type, rule.principal_id)
            if target_principal is None:
                continue
        denies.append(
            DenySpec(
                permission=rule.permission,
                role=target_role,
                principal=target_principal,
                unless={k: tuple(v) for k, v in sorted(rule.unless.items())},
                description=rule.description,
            )
        )
    return Policy(
        roles=roles,
        groups=groups,
        assignments=tuple(sorted(assignments, key=_assignment_key)),
        denies=tuple(sorted(denies, key=_deny_key)),
    )


def _assignment_key(assignment: AssignmentSpec) -> tuple[str, str]:
    return (assignment.principal, assignment.role)


def _load_groups(session: Session, names: _Names) -> dict[str, GroupSpec]:
    members: dict[int, list[str]] = {}
    for member in session.scalars(select(GroupMember)):
        principal = names.name_of(member.principal_type, member.principal_id)
        if principal is not None:
            members.setdefault(member.group_id, []).append(principal)
    return {
        group.name: GroupSpec(
            name=group.name,
            members=tuple(sorted(members.get(group.id, []))),
            description=group.description,
        )
        for group in session.scalars(select(Group))
    }


@dataclass
class PlanChange:
    """One line of a plan: ``+`` add, ``-`` remove, ``~`` change."""

    sign: str
    subject: str
    details: list[str] = field(default_factory=list)

    def render(self) -> str:
        lines = [f"{self.sign} {self.subject}"]
        lines.extend(f"    {detail}" for detail in self.details)
        return "\n".join(lines)


@dataclass
class Plan:
    changes: list[PlanChange]
    store_digest: str
    file_digest: str

    @property
    def is_empty(self) -> bool:
        return not self.changes

    def counts(self) -> dict[str, int]:
        return {
            "add": sum(change.sign == "+" for change in self.changes),
            "change": sum(change.sign == "~" for change in self.changes),
            "remove": sum(change.sign == "-" for change in self.changes),
        }

    def render(self) -> str:
        if self.is_empty:
            return "No changes: the store already matches the file."
        body = "\n".join(change.render() for change in self.changes)
        counts = self.counts()
        summary = (
            f"Plan: {counts['add']} to add, {counts['change']} to change, "
            f"{counts['remove']} to remove."
        )
        return f"{body}\n\n{summary}"

    def to_dict(self) -> dict[str, Any]:
        return {
            "store_digest": self.store_digest,
            "file_digest": self.file_digest,
            "counts": self.counts(),
            "changes": [
                {"sign": c.sign, "subject": c.subject, "details": c.details}
                for c in self.changes
            ],
        }


def _set_details(label: str, old: Iterable[str], new: Iterable[str]) -> list[str]:
    before, after = set(old), set(new)
    return [f"+ {label} {item}" for item in sorted(after - before)] + [
        f"- {label} {item}" for item in sorted(before - after)
    ]


def diff_policies(current: Policy, desired: Policy) -> list[PlanChange]:
    """List the changes that turn ``current`` into ``desired``."""
    changes: list[PlanChange] = []
    for name in sorted(set(current.roles) | set(desired.roles)):
        old_role, new_role = current.roles.get(name), desired.roles.get(name)
        if old_role is None and new_role is not None:
            details = _set_details("permission", (), new_role.permissions)
            details += _set_details("includes", (), new_role.includes)
            changes.append(PlanChange("+", f"role {name}", details))
        elif new_role is None:
            changes.append(PlanChange("-", f"role {name}"))
        elif old_role is not None:
            details = _set_details(
                "permission", old_role.permissions, new_role.permissions
            )
            details += _set_details("includes", old_role.includes, new_role.includes)
            if (old_role.description or None) != (new_role.description or None):
                details.append(
                    f"~ description {old_role.description!r} -> "
                    f"{new_role.description!r}"
                )
            if details:
                changes.append(PlanChange("~", f"role {name}", details))

    for name in sorted(set(current.groups) | set(desired.groups)):
        old_group, new_group = current.groups.get(name), desired.groups.get(name)
        if old_group is None and new_group is not None:
            details = _set_details("member", (), new_group.members)
            changes.append(PlanChange("+", f"group {name}", details))
        elif new_group is None:
            changes.append(PlanChange("-", f"group {name}"))
        elif old_group is not None:
            details = _set_details("member", old_group.members, new_group.members)
            if (old_group.description or None) != (new_group.description or None):
                details.append(
                    f"~ description {old_group.description!r} -> "
                    f"{new_group.description!r}"
                )
            if details:
                changes.append(PlanChange("~", f"group {name}", details))

    old_assignments = {_assignment_key(a): a for a in current.assignments}
    new_assignments = {_assignment_key(a): a for a in desired.assignments}
    for key in sorted(set(old_assignments) | set(new_assignments)):
        subject = f"assignment {key[0]} -> role {key[1]}"
        old_a, new_a = old_assignments.get(key), new_assignments.get(key)
        if old_a is None and new_a is not None:
            details = [f"expires {_iso(new_a.expires_at)}"] if new_a.expires_at else []
            changes.append(PlanChange("+", subject, details))
        elif new_a is None:
            changes.append(PlanChange("-", subject))
        elif old_a is not None and _iso(old_a.expires_at) != _iso(new_a.expires_at):
            detail = (
                f"~ expires {_iso(old_a.expires_at) or 'never'} -> "
                f"{_iso(new_a.expires_at) or 'never'}"
            )
            changes.append(PlanChange("~", subject, [detail]))

    old_denies = {_deny_key(d) for d in current.denies}
    new_denies = {_deny_key(d) for d in desired.denies}
    for sign, keys in (("+", new_denies - old_denies), ("-", old_denies - new_denies)):
        for target, permission, unless, _description in sorted(keys):
            details = [] if unless == "{}" else [f"unless {unless}"]
            changes.append(PlanChange(sign, f"deny {permission} for {target}", details))
    return changes


def plan_policy(session: Session, desired: Policy) -> Plan:
    """Compare the stored policy with ``desired``."""
    current = load_store_policy(session)
    return Plan(
        changes=diff_policies(current, desired),
        store_digest=policy_digest(current),
        file_digest=policy_digest(desired),
    )


def check_base(current_digest: str, base: str | None, *, force: bool) -> None:
    """Raise StalePolicyError unless the file was based on the current store.

    A file without ``base`` may be applied only to a store with an empty
    policy, so a hand-written file cannot silently replace someone's roles.
    """
    if force or base == current_digest:
        return
    if base is None and current_digest == policy_digest(Policy()):
        return
    if base is None:
        raise StalePolicyError(
            "the policy file has no 'base:' and the store already contains a policy; "
            "run 'keysteward policy export -o FILE', merge your changes into it "
            "and apply that, or pass --force to overwrite the store"
        )
    raise StalePolicyError(
        f"the store's policy changed since the file's base {base[:12]} "
        f"(store is now {current_digest[:12]}); export it again and merge, "
        "or pass --force to overwrite"
    )


def apply_policy(
    session: Session,
    desired: Policy,
    *,
    base: str | None,
    force: bool = False,
    actor: str = "cli",
) -> Plan:
    """Make the stored policy equal ``desired``, in ``session``'s transaction.

    Raises StalePolicyError when the store changed since ``base`` (unless
    ``force``), and the errors of check_policy_principals. In each case
    nothing is written. When the
    store already matches, only the event is recorded.
    Returns the plan that was applied.
    """
    # NOTE: a rejected apply raises before anything is written, and the
    # caller's rollback also drops any event, so rejections leave no event.
    check_policy_principals(session, desired)
    plan = plan_policy(session, desired)
    if plan.is_empty:
        version = read_policy_version(session)
        _record_apply(session, plan, version, actor=actor, forced=False)
        return plan
    check_base(plan.store_digest, base, force=force)

    names = _Names(session)
    roles = _sync_roles(session, desired)
    _sync_groups(session, desired, names)
    names = _Names(session)
    _sync_assignments(session, desired, roles, names)
    _sync_denies(session, desired, roles, names)

    state = mark_policy_changed(session)
    state.digest = plan.file_digest
    forced = force and base != plan.store_digest
    _record_apply(session, plan, state.version, actor=actor, forced=forced)
    session.flush()
    return plan


def _record_apply(
    session: Session, plan: Plan, version: int, *, actor: str, forced: bool
) -> None:
    record_event(
        session,
        actor=actor,
        action="authz.policy.apply",
        target_type="policy",
        target_id=version,
        details={
            "version": version,
            "changed": not plan.is_empty,
            # Prefixes only: a full 64-hex digest trips the event log's
            # secret filter, and 16 hex digits identify a policy well enough.
            "digest": plan.file_digest[:16],
            "previous_digest": plan.store_digest[:16],
            "forced": forced,
            "counts": plan.counts(),
        },
    )


def check_policy_principals(session: Session, desired: Policy) -> None:
    """Raise when ``desired`` names a principal that may not be given access.

    Raises UnknownPrincipalError when a person or service account in the file
    is not in the store, and DepartedPersonError when a role assignment or a
    group membership names a person who has departed.
    """
    _require_principals(_Names(session), desired)
    granted = {a.principal for a in desired.assignments}
    granted |= {m for group in desired.groups.values() for m in group.members}
    person_prefix = f"{PrincipalKind.PERSON}:"
    emails = sorted(p.removeprefix(person_prefix) for p in granted)
    departed = session.scalars(
        select(Person.email)
        .where(Person.email.in_(emails), Person.status == PersonStatus.DEPARTED)
        .order_by(Person.email)
    ).all()
    if departed:
        raise DepartedPersonError(
            "the policy gives roles to people who have departed: "
            f"{', '.join(departed)}; remove their assignments and group "
            "memberships from the file (offboarding removes them from the store)"
        )


def _require_principals(names: _Names, desired: Policy) -> None:
    defined_groups = {f"{PrincipalKind.GROUP}:{name}" for name in desired.groups}
    wanted = {a.principal for a in desired.assignments}
    wanted |= {m for group in desired.groups.values() for m in group.members}
    wanted |= {d.principal for d in desired.denies if d.principal}
    missing = sorted(
        principal
        for principal in wanted
        if principal not in names.by_name and principal not in defined_groups
    )
    if missing:
        raise UnknownPrincipalError(
            f"the policy names principals that are not in the store: "
            f"{', '.join(missing)}; import or create them first (people by email, "
            "service accounts by name) or remove them from the file"
        )


def _sync_roles(session: Session, desired: Policy) -> dict[str, Role]:
    existing = {
        role.name: role
        for role in session.scalars(
            select(Role).options(selectinload(Role.permissions))
        )
    }
    for name, role in existing.items():
        if name not in desired.roles:
            session.delete(role)
    permissions = {str(p): p for p in session.scalars(select(Permission))}
    roles: dict[str, Role] = {}
    for name, spec in desired.roles.items():
        found_role = existing.get(name)
        if found_role is None:
            role = Role(name=name)
            session.add(role)
        else:
            role = found_role
        role.description = spec.description
        role.permissions = [
            _permission_row(session, permissions, text)
            for text in sorted(set(spec.permissions))
        ]
        roles[name] = role
    session.flush()

    session.execute(delete(RoleInclude))
    for name, spec in desired.roles.items():
        for included in sorted(set(spec.includes)):
            session.add(
                RoleInclude(role_id=roles[name].id, included_role_id=roles[included].id)
            )
    return roles


def _permission_row(
    session: Session, permissions: dict[str, Permission], text: str
) -> Permission:
    row = permissions.get(text)
    if row is None:
        pattern = parse_pattern(text)
        row = Permission(
            system=pattern.system, resource=pattern.resource, action=pattern.action
        )
        session.add(row)
        permissions[text] = row
    return row


def _sync_groups(session: Session, desired: Policy, names: _Names) -> None:
    existing = {group.name: group for group in session.scalars(select(Group))}
    for name, group in existing.items():
        if name not in desired.groups:
            session.delete(group)
    session.flush()
    for name, spec in desired.groups.items():
        found_group = existing.get(name)
        if found_group is None:
            group = Group(name=name)
            session.add(group)
        else:
            group = found_group
        group.description = spec.description
    session.flush()

    session.execute(delete(GroupMember))
    groups = {group.name: group for group in session.scalars(select(Group))}
    names = _Names(session)
    for name, spec in desired.groups.items():
        for member in sorted(set(spec.members)):
            kind, row_id = names.by_name[member]
            session.add(
                GroupMember(
                    group_id=groups[name].id, principal_type=kind, principal_id=row_id
                )
            )


def _sync_assignments(
    session: Session, desired: Policy, roles: dict[str, Role], names: _Names
) -> None:
    session.execute(delete(RoleGrant))
    for assignment in sorted(set(desired.assignments), key=_assignment_key):
        kind, row_id = names.by_name[assignment.principal]
        session.add(
            RoleGrant(
                role_id=roles[assignment.role].id,
                principal_type=kind,
                principal_id=row_id,
                expires_at=as_utc(assignment.expires_at),
            )
        )


def _sync_denies(
    session: Session, desired: Policy, roles: dict[str, Role], names: _Names
) -> None:
    session.execute(delete(DenyRule))
    seen: set[tuple[str, str, str, str]] = set()
    for deny in desired.denies:
        key = _deny_key(deny)
        if key in seen:
            continue
        seen.add(key)
        rule = DenyRule(
            permission=deny.permission,
            unless={name: list(values) for name, values in deny.unless.items()},
            description=deny.description,
        )
        if deny.role is not None:
            rule.role_id = roles[deny.role].id
        elif deny.principal is not None:
            rule.principal_type, rule.principal_id = names.by_name[deny.principal]
        session.add(rule)


def remove_principal_grants(
    session: Session, kind: PrincipalKind, principal_id: int, *, actor: str
) -> list[dict[str, Any]]:
    """Delete every role assignment and group membership of one principal.

    Deny rules that name the principal stay, because they only take access
    away. Each removal is recorded as an event, and the policy version is
    bumped so every cached index drops the grants. Returns what was removed:
    ``{"via": "assignment", "name": ROLE, "expires_at": ...}`` or
    ``{"via": "group", "name": GROUP, "expires_at": None}``.
    """
    grants = session.scalars(
        select(RoleGrant)
        .where(RoleGrant.principal_type == kind, RoleGrant.principal_id == principal_id)
        .options(selectinload(RoleGrant.role))
        .order_by(RoleGrant.id)
    ).all()
    memberships = session.execute(
        select(GroupMember, Group.name)
        .join(Group, Group.id == GroupMember.group_id)
        .where(
            GroupMember.principal_type == kind,
            GroupMember.principal_id == principal_id,
        )
        .order_by(Group.name)
    ).all()
    removed: list[dict[str, Any]] = [
        {"via": "assignment", "name": grant.role.name, "expires_at": grant.expires_at}
        for grant in grants
    ]
    removed += [
        {"via": "group", "name": name, "expires_at": None}
        for _member, name in memberships
    ]
    if not removed:
        return removed

    for grant in grants:
        session.delete(grant)
    for member, _name in memberships:
        session.delete(member)
    session.flush()
    state = mark_policy_changed(session)
    state.digest = policy_digest(load_store_policy(session))
    for entry in removed:
        record_event(
            session,
            actor=actor,
            action=f"authz.{entry['via']}.remove",
            target_type=str(kind),
            target_id=principal_id,
            details={"name": entry["name"], "policy_version": state.version},
        )
    return removed
