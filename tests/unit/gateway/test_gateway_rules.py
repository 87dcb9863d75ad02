"""Rules: path patterns, default actions, placeholders and path checks."""

import pytest

from keysteward.gateway.rules import (
    Rule,
    RuleError,
    UnsafePathError,
    check_path,
    compile_rule,
    match_rule,
)


def _permission(rules: tuple[Rule, ...], method: str, path: str) -> str | None:
    found = match_rule(rules, method, path)
    return None if found is None else found.permission


RULES = (
    compile_rule(
        "gh", "/repos/{owner}/{repo}/issues", "repos/{owner}/{repo}", None, None
    ),
    compile_rule("gh", "/user", "user", ["GET"], None),
    compile_rule("gh", "/search/**", "search", None, "read"),
    compile_rule("gh", "/orgs/*/members", "orgs", None, None),
)


@pytest.mark.parametrize(
    ("method", "path", "expected"),
    [
        ("GET", "/repos/acme/api/issues", "gh:repos/acme/api:read"),
        ("HEAD", "/repos/acme/api/issues/", "gh:repos/acme/api:read"),
        ("POST", "/repos/acme/api/issues", "gh:repos/acme/api:write"),
        ("PUT", "/repos/acme/api/issues", "gh:repos/acme/api:write"),
        ("PATCH", "/repos/acme/api/issues", "gh:repos/acme/api:write"),
        ("DELETE", "/repos/acme/api/issues", "gh:repos/acme/api:delete"),
        ("GET", "/user", "gh:user:read"),
        ("POST", "/search", "gh:search:read"),
        ("POST", "/search/code/deep", "gh:search:read"),
        ("GET", "/orgs/acme/members", "gh:orgs:read"),
    ],
)
def test_match_rule_permission(method: str, path: str, expected: str) -> None:
    assert _permission(RULES, method, path) == expected


@pytest.mark.parametrize(
    ("method", "path"),
    [
        ("POST", "/user"),
        ("GET", "/repos/acme/issues"),
        ("GET", "/repos/acme/api/issues/1"),
        ("GET", "/orgs/acme/members/x"),
        ("GET", "/searching"),
        ("GET", "/"),
    ],
)
def test_match_rule_no_match(method: str, path: str) -> None:
    assert match_rule(RULES, method, path) is None


def test_method_without_default_action_gives_none() -> None:
    found = match_rule(RULES, "OPTIONS", "/repos/acme/api/issues")

    assert found is not None
    assert found.permission is None


@pytest.mark.parametrize("owner", ["a:b", "*", "a%2Fb", "a b"])
def test_unsafe_placeholder_value_gives_none(owner: str) -> None:
    found = match_rule(RULES, "GET", f"/repos/{owner}/api/issues")

    assert found is not None
    assert found.permission is None


@pytest.mark.parametrize(
    ("path", "resource", "methods", "action", "message"),
    [
        ("repos", "repos", None, None, "must start with /"),
        ("/a/**/b", "a", None, None, "only at the end"),
        ("/a//b", "a", None, None, "empty segment"),
        ("/a/{x}/{x}", "a", None, None, "appears twice"),
        ("/a/b*", "a", None, None, "invalid path segment"),
        ("/a/{x}", "a/{y}", None, None, "does not capture"),
        ("/a", "a", ["get me"], None, "invalid method"),
        ("/a", "a:b", None, None, "invalid"),
        ("/a", "a", None, "READ!", "invalid"),
    ],
)
def test_compile_rule_rejects(
    path: str,
    resource: str,
    methods: list[str] | None,
    action: str | None,
    message: str,
) -> None:
    with pytest.raises(RuleError, match=message):
        compile_rule("gh", path, resource, methods, action)


@pytest.mark.parametrize(
    ("decoded", "raw"),
    [
        ("/a/../b", "/a/../b"),
        ("/a/./b", "/a/./b"),
        ("/a//b", "/a//b"),
        ("/a/b/c", "/a%2Fb/c"),
        ("/a/../b", "/a/%2e%2e/b"),
        ("/a\\b", "/a%5Cb"),
        ("/a\x00", "/a%00"),
    ],
)
def test_check_path_rejects(decoded: str, raw: str) -> None:
    with pytest.raises(UnsafePathError):
        check_path(decoded, raw)


@pytest.mark.parametrize("path", ["", "/", "/a", "/a/b/", "/a/b%20c"])
def test_check_path_accepts(path: str) -> None:
    check_path(path.replace("%20", " "), path)
