"""Property tests: the compiled index against a naive evaluator on random policies."""

from dataclasses import replace

from hypothesis import given, settings
from hypothesis import strategies as st

from keysteward.authz.engine import compile_policy
from keysteward.authz.permissions import (
    covered_actions,
    match_segments,
    parse_pattern,
    parse_request,
)
from keysteward.authz.policy import (
    AssignmentSpec,
    DenySpec,
    GroupSpec,
    Policy,
    RoleSpec,
)

SYSTEMS = ("crm", "drive")
SEGMENTS = ("a", "b", "c")
ACTIONS = ("read", "write", "delete", "admin", "invoke")
ROLES = tuple(f"r{i}" for i in range(5))
PRINCIPALS = tuple(f"service_account:p{i}" for i in range(4))
GROUPS = ("g0", "g1")

resources = st.lists(st.sampled_from(SEGMENTS), min_size=1, max_size=3)
pattern_resources = st.lists(
    st.sampled_from((*SEGMENTS, "*")), min_size=1, max_size=3
).flatmap(
    lambda segments: st.sampled_from(
        [segments, [*segments[:-1], "**"]] if segments else [segments]
    )
)
patterns = st.builds(
    lambda system, segments, action: f"{system}:{'/'.join(segments)}:{action}",
    st.sampled_from(SYSTEMS),
    pattern_resources,
    st.sampled_from(ACTIONS),
)
requests = st.builds(
    lambda system, segments, action: f"{system}:{'/'.join(segments)}:{action}",
    st.sampled_from(SYSTEMS),
    resources,
    st.sampled_from(ACTIONS),
)
roles = st.builds(
    lambda name, permissions, includes: RoleSpec(
        name, tuple(permissions), tuple(includes)
    ),
    st.sampled_from(ROLES),
    st.lists(patterns, max_size=4),
    st.lists(st.sampled_from(ROLES), max_size=2),
)
holders = st.sampled_from((*PRINCIPALS, *(f"group:{g}" for g in GROUPS)))
denies = st.one_of(
    st.builds(lambda p, r: DenySpec(p, role=r), patterns, st.sampled_from(ROLES)),
    st.builds(lambda p, who: DenySpec(p, principal=who), patterns, holders),
    st.builds(lambda p: DenySpec(p), patterns),
)


@st.composite
def policies(draw: st.DrawFn) -> Policy:
    role_specs = {role.name: role for role in draw(st.lists(roles, max_size=5))}
    groups = {
        name: GroupSpec(
            name, tuple(draw(st.lists(st.sampled_from(PRINCIPALS), max_size=3)))
        )
        for name in GROUPS
    }
    assignments = draw(
        st.lists(st.builds(AssignmentSpec, holders, st.sampled_from(ROLES)), max_size=6)
    )
    return Policy(
        roles=role_specs,
        groups=groups,
        assignments=tuple(assignments),
        denies=tuple(draw(st.lists(denies, max_size=3))),
    )


def _closure(policy: Policy, role: str, seen: set[str]) -> set[str]:
    if role in seen:
        return seen
    seen.add(role)
    spec = policy.roles.get(role)
    for included in spec.includes if spec else ():
        _closure(policy, included, seen)
    return seen


def _rule_matches(pattern_text: str, request_text: str, *, for_deny: bool) -> bool:
    pattern = parse_pattern(pattern_text)
    request = parse_request(request_text)
    return (
        pattern.system == request.system
        and request.action in covered_actions(pattern.action)
        and match_segments(pattern.segments, request.segments, for_deny=for_deny)
    )


def naive_allows(policy: Policy, principal: str, request: str) -> bool:
    """Evaluate one request by walking the policy directly, with no index."""
    identities = {principal}
    identities |= {
        f"group:{group.name}"
        for group in policy.groups.values()
        if principal in group.members
    }
    held: set[str] = set()
    for assignment in policy.assignments:
        if assignment.principal in identities:
            _closure(policy, assignment.role, held)
    for deny in policy.denies:
        applies = (
            (deny.role is not None and deny.role in held)
            or (deny.principal is not None and deny.principal in identities)
            or (deny.role is None and deny.principal is None)
        )
        if applies and _rule_matches(deny.permission, request, for_deny=True):
            return False
    return any(
        _rule_matches(text, request, for_deny=False)
        for role in held
        if role in policy.roles
        for text in policy.roles[role].permissions
    )


checks = st.lists(
    st.tuples(st.sampled_from(PRINCIPALS), requests), min_size=1, max_size=20
)


@settings(max_examples=150, deadline=None)
@given(policies(), checks)
def test_index_agrees_with_naive(policy: Policy, sample: list[tuple[str, str]]) -> None:
    index = compile_policy(policy)
    for principal, request in sample:
        expected = naive_allows(policy, principal, request)
        assert bool(index.check(principal, request)) is expected, (principal, request)


@settings(max_examples=100, deadline=None)
@given(policies(), denies, checks)
def test_added_deny_never_grants(
    policy: Policy, deny: DenySpec, sample: list[tuple[str, str]]
) -> None:
    before = compile_policy(policy)
    after = compile_policy(replace(policy, denies=(*policy.denies, deny)))
    for principal, request in sample:
        if not before.check(principal, request):
            assert not after.check(principal, request), (principal, request)


@settings(max_examples=100, deadline=None)
@given(policies(), st.sampled_from(ROLES), patterns, holders, checks)
def test_added_grant_never_revokes(
    policy: Policy,
    role: str,
    permission: str,
    holder: str,
    sample: list[tuple[str, str]],
) -> None:
    existing = policy.roles.get(role, RoleSpec(role))
    widened_roles = {
        **policy.roles,
        role: replace(existing, permissions=(*existing.permissions, permission)),
    }
    # A role can carry deny rules, and assigning such a role rightly revokes,
    # so the new assignment is added only when the role's closure has none.
    carried = _closure(replace(policy, roles=widened_roles), role, set())
    assignments = policy.assignments
    if not any(deny.role in carried for deny in policy.denies):
        assignments = (*assignments, AssignmentSpec(holder, role))
    widened = replace(policy, roles=widened_roles, assignments=assignments)
    before = compile_policy(policy)
    after = compile_policy(widened)
    for principal, request in sample:
        if before.check(principal, request):
            assert after.check(principal, request), (principal, request)
