"""The decision engine: a compiled, immutable index of the policy.

``compile_policy`` turns a ``Policy`` into a ``PolicyIndex``: grants and
role deny rules keyed by ``(role, system, action)``, principal and everyone
deny rules keyed by ``(principal, system, action)``, and for each principal
the roles in effect for it. Each key maps to the literal resources (a dict)
and the wildcard patterns (a short list). Role includes, group membership
and ``admin`` implying read, write and delete are expanded at build time, so
a check is one dictionary lookup per role the principal holds, and a
repeated check is one lookup in a memo of decisions.

Indexing per role rather than per principal keeps a rebuild cheap: its cost
grows with grants plus assignments, not with their product.

Rules:

- deny by default: no matching grant means deny;
- deny overrides: a matching deny rule wins over every grant, whichever
  role or group either came from;
- an invalid principal or permission is denied, with the parse error as the
  reason, so callers that forward user input fail closed.

A built index is never mutated apart from its decision memo, whose dict
operations are atomic under the GIL, so one index can serve many threads.
``Authorizer`` rebuilds the index when the store's policy version changes.

Public entry point::

    check(source, principal, permission_or_action, resource=None,
          *, context=None, at=None) -> Decision

where ``source`` is a ``Store`` or a ``PolicyIndex``.
"""

import threading
import time
import weakref
from collections import deque
from collections.abc import Collection, Iterable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from datetime import datetime
from typing import TYPE_CHECKING, Any

from keysteward.authz.errors import InvalidPermissionError, InvalidPrincipalError
from keysteward.authz.permissions import (
    AccessRequest,
    PermissionPattern,
    PrincipalKind,
    covered_actions,
    parse_pattern,
    parse_principal,
    parse_request,
)
from keysteward.authz.policy import EVERYONE, DenySpec, Policy
from keysteward.clock import as_utc, utcnow

if TYPE_CHECKING:
    from keysteward.db import Store

# The memo is cleared when it reaches this many decisions, so a stream of
# distinct requests cannot grow it without bound.
MEMO_LIMIT = 200_000


@dataclass(frozen=True, slots=True)
class GrantSource:
    """Why a permission is granted: the assignment, role path and permission."""

    principal: str
    role: str
    role_path: tuple[str, ...]
    permission: str
    via_group: str | None = None
    expires_at: datetime | None = None

    def describe(self) -> str:
        holder = self.principal
        if self.via_group:
            holder = f"{self.principal} through {self.via_group}"
        path = " > ".join(self.role_path)
        text = f"{holder} holds role {path}, which grants {self.permission}"
        if self.expires_at is not None:
            text += f" (assignment expires {self.expires_at.isoformat()})"
        return text


@dataclass(frozen=True, slots=True)
class DenySource:
    """The deny rule that decided a request, and how it reached the principal."""

    target: str
    permission: str
    role_path: tuple[str, ...] = ()
    via_group: str | None = None
    unless: tuple[tuple[str, frozenset[str]], ...] = ()
    description: str | None = None

    def describe(self) -> str:
        text = f"deny rule on {self.target} for {self.permission}"
        if self.role_path:
            text += f" (reached through role {' > '.join(self.role_path)})"
        if self.via_group:
            text += f" (through {self.via_group})"
        if self.unless:
            names = ", ".join(name for name, _ in self.unless)
            text += f"; context {names} missing or not approved"
        if self.description:
            text += f": {self.description}"
        return text

    def applies(self, context: Mapping[str, Any] | None) -> bool:
        if not self.unless:
            return True
        if not context:
            return True
        return not all(context.get(name) in values for name, values in self.unless)


@dataclass(frozen=True, slots=True)
class Decision:
    """The outcome of one check; true when allowed, with its explanation."""

    allowed: bool
    principal: str
    permission: str
    # Set for decisions that no grant or deny rule explains (an invalid
    # request, nothing granted). Other reasons are built from ``grant`` or
    # ``deny`` on first read, which keeps string formatting off the check path.
    note: str | None = None
    grant: GrantSource | None = None
    deny: DenySource | None = None

    def __bool__(self) -> bool:
        return self.allowed

    @property
    def reason(self) -> str:
        if self.deny is not None:
            return self.deny.describe()
        if self.grant is not None:
            return self.grant.describe()
        if self.note is not None:
            return self.note
        if self.allowed:
            return "allowed"
        return (
            f"no grant of {self.principal} covers {self.permission} (deny by default)"
        )

    @property
    def outcome(self) -> str:
        return "allow" if self.allowed else "deny"

    def to_dict(self) -> dict[str, Any]:
        result: dict[str, Any] = {
            "decision": self.outcome,
            "principal": self.principal,
            "permission": self.permission,
            "reason": self.reason,
        }
        if self.grant is not None:
            result["grant"] = {
                "principal": self.grant.principal,
                "via_group": self.grant.via_group,
                "role": self.grant.role,
                "role_path": list(self.grant.role_path),
                "permission": self.grant.permission,
                "expires_at": self.grant.expires_at,
            }
        if self.deny is not None:
            result["deny"] = {
                "target": self.deny.target,
                "permission": self.deny.permission,
                "role_path": list(self.deny.role_path),
                "via_group": self.deny.via_group,
                "unless": {name: sorted(values) for name, values in self.deny.unless},
                "description": self.deny.description,
            }
        return result


@dataclass(frozen=True, slots=True)
class _Entry:
    """One permission of a rule set: a grant's text, or a deny rule's source."""

    pattern: PermissionPattern
    permission: str
    deny: DenySource | None = None


@dataclass
class _RuleSet:
    exact: dict[str, list[_Entry]] = field(default_factory=dict)
    patterns: list[_Entry] = field(default_factory=list)

    def add(self, entry: _Entry) -> None:
        if entry.pattern.is_literal:
            self.exact.setdefault(entry.pattern.resource, []).append(entry)
        else:
            self.patterns.append(entry)

    def first_match(self, request: AccessRequest, *, for_deny: bool) -> _Entry | None:
        found = self.exact.get(request.resource)
        if found:
            return found[0]
        for entry in self.patterns:
            if entry.pattern.matches_resource(request.segments, for_deny=for_deny):
                return entry
        return None


@dataclass(frozen=True, slots=True)
class _Held:
    """A role in effect for a principal: reached through ``path`` from a role
    assigned to ``assignee`` (the principal itself, or ``via_group``)."""

    role: str
    path: tuple[str, ...]
    assignee: str
    via_group: str | None
    expires_at: datetime | None

    def in_force(self, now: datetime) -> bool:
        return self.expires_at is None or now < self.expires_at


_Key = tuple[str, str, str]


class PolicyIndex:
    """A compiled policy; build it with ``compile_policy``.

    Grants and role deny rules are indexed per ``(role, system, action)``,
    and each principal maps to the roles in effect for it (includes and
    groups already expanded), so a check is one lookup per held role plus
    the principal's own deny rules. Repeated checks hit the decision memo.
    """

    def __init__(
        self,
        role_allows: dict[_Key, _RuleSet],
        role_denies: dict[_Key, _RuleSet],
        principal_denies: dict[_Key, _RuleSet],
        held: dict[str, tuple[_Held, ...]],
        *,
        version: int = 0,
        built_at: datetime,
        valid_until: datetime | None,
    ) -> None:
        self._role_allows = role_allows
        self._role_denies = role_denies
        self._principal_denies = principal_denies
        self._held = held
        self.principals = frozenset(held)
        self.version = version
        self.built_at = built_at
        # The earliest assignment expiry after the build: memoized decisions
        # are reused only before it, so an expired role is never honoured.
        self.valid_until = valid_until
        self._memo_deadline = (
            float("inf") if valid_until is None else valid_until.timestamp()
        )
        self._memo: dict[tuple[str, str, frozenset[str] | None], Decision] = {}

    def check(
        self,
        principal: str,
        permission: str,
        resource: str | None = None,
        *,
        context: Mapping[str, Any] | None = None,
        at: datetime | None = None,
        roles: Collection[str] | None = None,
    ) -> Decision:
        """Decide whether ``principal`` may do ``permission``.

        Pass either a full ``system:resource:action`` permission, or an action
        and a ``system:resource``. ``context`` contains request attributes for
        deny rules with an ``unless`` condition. ``at`` evaluates assignment
        expiry at that time instead of now. ``roles``, when given, limits the
        grants to assignments of those roles (a token's role subset); deny
        rules from every held role still apply.
        """
        if resource is not None:
            permission = f"{resource}:{permission}"
        # A token's role subset arrives as a frozenset, which can be part of
        # the memo key. Decisions for other collections are not memoized.
        memo_key: tuple[str, str, frozenset[str] | None] | None = None
        plain = not context and at is None
        if plain and (roles is None or isinstance(roles, frozenset)):
            memo_key = (principal, permission, roles)
        if memo_key is not None:
            cached = self._memo.get(memo_key)
            if cached is not None and time.time() < self._memo_deadline:
                return cached
        now = as_utc(at) or utcnow()
        decision = self._decide(principal, permission, context, now, roles)
        if memo_key is not None and (
            self.valid_until is None or now < self.valid_until
        ):
            if len(self._memo) >= MEMO_LIMIT:
                self._memo.clear()
            self._memo[memo_key] = decision
        return decision

    def _decide(
        self,
        principal: str,
        permission: str,
        context: Mapping[str, Any] | None,
        now: datetime,
        roles: Collection[str] | None = None,
    ) -> Decision:
        try:
            parse_principal(principal)
            request = parse_request(permission)
        except (InvalidPrincipalError, InvalidPermissionError) as exc:
            return Decision(
                False, principal, permission, note=f"invalid request: {exc}"
            )
        held: Sequence[_Held] = self._held.get(principal, ())
        if self.valid_until is not None:
            held = [h for h in held if h.in_force(now)]

        deny = self._find_deny(principal, request, held, context)
        if deny is not None:
            return Decision(False, principal, permission, deny=deny)

        for holding in held:
            if roles is not None and holding.path[0] not in roles:
                continue
            rules = self._role_allows.get(
                (holding.role, request.system, request.action)
            )
            entry = rules.first_match(request, for_deny=False) if rules else None
            if entry is not None:
                grant = GrantSource(
                    principal=holding.assignee,
                    role=holding.path[0],
                    role_path=holding.path,
                    permission=entry.permission,
                    via_group=holding.via_group,
                    expires_at=holding.expires_at,
                )
                return Decision(True, principal, permission, grant=grant)

        if principal not in self.principals:
            note = f"{principal} has no assignments (deny by default)"
            return Decision(False, principal, permission, note=note)
        return Decision(False, principal, permission)

    def _find_deny(
        self,
        principal: str,
        request: AccessRequest,
        held: Sequence[_Held],
        context: Mapping[str, Any] | None,
    ) -> DenySource | None:
        system, action = request.system, request.action
        for who in (principal, EVERYONE):
            rules = self._principal_denies.get((who, system, action))
            if rules is not None:
                deny = _first_applying(rules, request, context)
                if deny is not None:
                    return deny
        for holding in held:
            rules = self._role_denies.get((holding.role, system, action))
            if rules is not None:
                deny = _first_applying(rules, request, context)
                if deny is not None:
                    return replace(
                        deny, role_path=holding.path, via_group=holding.via_group
                    )
        return None


def _first_applying(
    rules: _RuleSet, request: AccessRequest, context: Mapping[str, Any] | None
) -> DenySource | None:
    for entry in _all_matches(rules, request):
        if entry.deny is not None and entry.deny.applies(context):
            return entry.deny
    return None


def _all_matches(rules: _RuleSet, request: AccessRequest) -> Iterable[_Entry]:
    # Deny rules with an ``unless`` condition may not apply, so every match is
    # tried in turn instead of only the first.
    yield from rules.exact.get(request.resource, ())
    for entry in rules.patterns:
        if entry.pattern.matches_resource(request.segments, for_deny=True):
            yield entry


def role_closure(policy: Policy, role: str) -> list[tuple[str, tuple[str, ...]]]:
    """List ``role`` and every role it includes, each with its include path.

    Breadth-first, so each role comes with its shortest path. A role already
    visited is skipped, so a cycle ends the walk instead of recursing.
    """
    found: list[tuple[str, tuple[str, ...]]] = []
    seen = {role}
    queue: deque[tuple[str, tuple[str, ...]]] = deque([(role, (role,))])
    while queue:
        name, path = queue.popleft()
        found.append((name, path))
        spec = policy.roles.get(name)
        if spec is None:
            continue
        for included in spec.includes:
            if included not in seen:
                seen.add(included)
                queue.append((included, (*path, included)))
    return found


@dataclass(frozen=True, slots=True)
class _Holding:
    """A role assigned to a principal, directly or through a group."""

    principal: str
    role: str
    via_group: str | None
    expires_at: datetime | None


def _group_members(policy: Policy) -> dict[str, tuple[str, ...]]:
    return {
        f"{PrincipalKind.GROUP}:{group.name}": tuple(group.members)
        for group in policy.groups.values()
    }


def _holdings(policy: Policy, now: datetime) -> dict[str, list[_Holding]]:
    members_by_group = _group_members(policy)
    holdings: dict[str, list[_Holding]] = {}
    for assignment in policy.assignments:
        expires_at = as_utc(assignment.expires_at)
        if expires_at is not None and expires_at <= now:
            continue
        holders: list[tuple[str, str | None]] = [(assignment.principal, None)]
        holders += [
            (member, assignment.principal)
            for member in members_by_group.get(assignment.principal, ())
        ]
        for holder, via_group in holders:
            holdings.setdefault(holder, []).append(
                _Holding(assignment.principal, assignment.role, via_group, expires_at)
            )
    for group_principal, members in members_by_group.items():
        for member in [group_principal, *members]:
            holdings.setdefault(member, [])
    return holdings


def _add(index: dict[_Key, _RuleSet], owner: str, entry: _Entry) -> None:
    for action in covered_actions(entry.pattern.action):
        key = (owner, entry.pattern.system, action)
        index.setdefault(key, _RuleSet()).add(entry)


def compile_policy(
    policy: Policy, *, version: int = 0, now: datetime | None = None
) -> PolicyIndex:
    """Build the index for ``policy`` as of ``now``.

    Assignments already expired at ``now`` are left out. Raises
    InvalidPermissionError for a permission that does not parse. Validate a
    policy file first (``policy.parse_policy_text``) for errors with lines.
    """
    built_at = as_utc(now) or utcnow()
    role_allows: dict[_Key, _RuleSet] = {}
    role_denies: dict[_Key, _RuleSet] = {}
    principal_denies: dict[_Key, _RuleSet] = {}
    for name, spec in policy.roles.items():
        for text in dict.fromkeys(spec.permissions):
            _add(role_allows, name, _Entry(parse_pattern(text), text))

    members_by_group = _group_members(policy)
    for deny in policy.denies:
        entry = _Entry(parse_pattern(deny.permission), deny.permission)
        if deny.role is not None:
            _add(role_denies, deny.role, replace(entry, deny=_deny_source(deny, None)))
            continue
        target = deny.principal or EVERYONE
        _add(principal_denies, target, replace(entry, deny=_deny_source(deny, None)))
        for member in members_by_group.get(target, ()):
            source = _deny_source(deny, target)
            _add(principal_denies, member, replace(entry, deny=source))

    closures: dict[str, list[tuple[str, tuple[str, ...]]]] = {}
    held: dict[str, tuple[_Held, ...]] = {}
    expiries = []
    for principal, holdings in _holdings(policy, built_at).items():
        effective: dict[tuple[str, str | None, datetime | None], _Held] = {}
        for holding in holdings:
            if holding.expires_at is not None:
                expiries.append(holding.expires_at)
            if holding.role not in closures:
                closures[holding.role] = role_closure(policy, holding.role)
            for role_name, path in closures[holding.role]:
                key = (role_name, holding.via_group, holding.expires_at)
                effective.setdefault(
                    key,
                    _Held(
                        role_name,
                        path,
                        holding.principal,
                        holding.via_group,
                        holding.expires_at,
                    ),
                )
        held[principal] = tuple(effective.values())

    return PolicyIndex(
        role_allows,
        role_denies,
        principal_denies,
        held,
        version=version,
        built_at=built_at,
        valid_until=min(expiries) if expiries else None,
    )


def grants_by_principal(
    policy: Policy, now: datetime | None = None
) -> dict[str, list[GrantSource]]:
    """List every grant each principal has at ``now``, with its provenance.

    Groups appear as principals too, and their members list the group's
    grants with ``via_group`` set.
    """
    found: dict[str, list[GrantSource]] = {}
    closures: dict[str, list[tuple[str, tuple[str, ...]]]] = {}
    for principal, held in _holdings(policy, as_utc(now) or utcnow()).items():
        grants = found.setdefault(principal, [])
        for holding in held:
            if holding.role not in closures:
                closures[holding.role] = role_closure(policy, holding.role)
            for role_name, path in closures[holding.role]:
                spec = policy.roles.get(role_name)
                for text in spec.permissions if spec else ():
                    grants.append(
                        GrantSource(
                            principal=holding.principal,
                            role=holding.role,
                            role_path=path,
                            permission=text,
                            via_group=holding.via_group,
                            expires_at=holding.expires_at,
                        )
                    )
    return found


def _deny_source(deny: DenySpec, via_group: str | None) -> DenySource:
    return DenySource(
        target=deny.target,
        permission=deny.permission,
        via_group=via_group,
        unless=tuple(
            (name, frozenset(values)) for name, values in sorted(deny.unless.items())
        ),
        description=deny.description,
    )


class Authorizer:
    """Keep a compiled index for one store, rebuilt when its policy changes.

    The store's policy version is read at most once per ``refresh_seconds``,
    so a change applied by another process is seen within that interval.
    """

    def __init__(self, store: "Store", refresh_seconds: float = 1.0) -> None:
        self._store = store
        self._refresh_seconds = refresh_seconds
        self._lock = threading.Lock()
        self._index: PolicyIndex | None = None
        self._checked_at = 0.0

    def index(self) -> PolicyIndex:
        """Return the current index, rebuilding it if the store's version moved."""
        current = self._index
        if current is not None and (
            time.monotonic() - self._checked_at < self._refresh_seconds
        ):
            return current
        from keysteward.authz.services import read_policy_version

        with self._lock:
            with self._store.session() as session:
                version = read_policy_version(session)
            self._checked_at = time.monotonic()
            if self._index is None or self._index.version != version:
                self._index = build_index(self._store)
            return self._index

    def refresh(self) -> PolicyIndex:
        """Rebuild the index now."""
        with self._lock:
            self._index = build_index(self._store)
            self._checked_at = time.monotonic()
            return self._index

    def check(
        self,
        principal: str,
        permission: str,
        resource: str | None = None,
        *,
        context: Mapping[str, Any] | None = None,
        at: datetime | None = None,
        roles: Collection[str] | None = None,
    ) -> Decision:
        return self.index().check(
            principal, permission, resource, context=context, at=at, roles=roles
        )


def build_index(store: "Store") -> PolicyIndex:
    """Compile the policy held in ``store``."""
    from keysteward.authz.services import load_store_policy, read_policy_version

    with store.session() as session:
        version = read_policy_version(session)
        policy = load_store_policy(session)
    return compile_policy(policy, version=version)


_authorizers: dict[int, Authorizer] = {}
_authorizers_lock = threading.Lock()


def authorizer_for(store: "Store") -> Authorizer:
    """Return the shared Authorizer of ``store``, creating it on first use."""
    key = id(store)
    found = _authorizers.get(key)
    if found is not None:
        return found
    with _authorizers_lock:
        found = _authorizers.get(key)
        if found is None:
            found = Authorizer(store)
            _authorizers[key] = found
            weakref.finalize(store, _authorizers.pop, key, None)
        return found


def check(
    source: "Store | PolicyIndex",
    principal: str,
    permission: str,
    resource: str | None = None,
    *,
    context: Mapping[str, Any] | None = None,
    at: datetime | None = None,
) -> Decision:
    """Decide whether ``principal`` may do ``permission`` under ``source``'s policy.

    ``source`` is a ``PolicyIndex`` or a ``Store`` (whose index is cached and
    rebuilt when the stored policy changes). ``permission`` is a full
    ``system:resource:action``, or an action when ``resource`` is the
    ``system:resource``. The result is a ``Decision``: true when allowed, with
    ``reason`` and the grant or deny rule that decided it.
    """
    if isinstance(source, PolicyIndex):
        index = source
    else:
        index = authorizer_for(source).index()
    return index.check(principal, permission, resource, context=context, at=at)
