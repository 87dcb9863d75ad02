"""Parsing and matching of system:resource:action permissions."""

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from keysteward.authz.errors import InvalidPermissionError, InvalidPrincipalError
from keysteward.authz.permissions import (
    _parse_parts,
    _parse_principal_full,
    covered_actions,
    match_segments,
    parse_pattern,
    parse_principal,
    parse_request,
)


def _matches(pattern: str, request: str, *, for_deny: bool = False) -> bool:
    rule = parse_pattern(pattern)
    wanted = parse_request(request)
    if (rule.system, rule.action) != (wanted.system, wanted.action):
        return False
    return match_segments(rule.segments, wanted.segments, for_deny=for_deny)


class TestParse:
    def test_parse_hierarchical_resource(self) -> None:
        pattern = parse_pattern("drive:reports/2026/*:read")
        assert pattern.system == "drive"
        assert pattern.segments == ("reports", "2026", "*")
        assert pattern.action == "read"
        assert str(pattern) == "drive:reports/2026/*:read"

    @pytest.mark.parametrize(
        "text",
        [
            "crm:contacts",
            "crm:contacts:notes:read",
            "CRM:contacts:read",
            "crm:contacts:Read",
            "crm::read",
            "crm:a//b:read",
            "crm:/a:read",
            "crm:a/:read",
            "crm:a/../b:read",
            "crm:./a:read",
            "crm:a%2Fb:read",
            "crm:a b:read",
            "crm: a:read",
            "crm:a\tb:read",
            "crm:a\u200bb:read",
            "crm:ｃontacts:read",
            "crm:ﬁles:read",
            "crm:cafe\u0301:read",
            "crm:rep*:read",
            "crm:**/a:read",
            "crm:a\\b:read",
        ],
    )
    def test_parse_rejects_ambiguous(self, text: str) -> None:
        with pytest.raises(InvalidPermissionError):
            parse_pattern(text)

    def test_error_names_value(self) -> None:
        with pytest.raises(InvalidPermissionError, match="crm:a/../b:read"):
            parse_request("crm:a/../b:read")

    def test_request_rejects_wildcards(self) -> None:
        with pytest.raises(InvalidPermissionError, match="wildcards"):
            parse_request("crm:*:read")

    def test_composed_unicode_accepted(self) -> None:
        assert parse_request("docs:café:read").resource == "café"


class TestMatch:
    def test_star_matches_one_segment(self) -> None:
        assert _matches("crm:*:read", "crm:contacts:read")
        assert not _matches("crm:*:read", "crm:contacts/notes:read")

    def test_deep_wildcard_matches_descendants(self) -> None:
        assert _matches("drive:reports/**:read", "drive:reports/2026/q1:read")
        assert _matches("drive:reports/**:read", "drive:reports/x:read")
        assert not _matches("drive:reports/**:read", "drive:reports:read")
        assert not _matches("drive:reports/**:read", "drive:reportsx/a:read")

    def test_exact_is_not_prefix(self) -> None:
        assert _matches("proj:1:read", "proj:1:read")
        assert not _matches("proj:1:read", "proj:10:read")
        assert not _matches("proj:1:read", "proj:1/members:read")

    def test_case_sensitive(self) -> None:
        assert not _matches("crm:Contacts:read", "crm:contacts:read")

    def test_grant_wildcard_skips_non_ascii(self) -> None:
        cyrillic = "p\u0430yroll"
        assert not _matches("docs:*:read", f"docs:{cyrillic}:read")
        assert not _matches("docs:**:read", f"docs:a/{cyrillic}:read")

    def test_deny_wildcard_covers_non_ascii(self) -> None:
        cyrillic = "p\u0430yroll"
        assert _matches("docs:*:read", f"docs:{cyrillic}:read", for_deny=True)
        assert _matches("docs:**:read", f"docs:a/{cyrillic}:read", for_deny=True)


class TestActions:
    def test_admin_covers_standard_actions(self) -> None:
        assert covered_actions("admin") == {"read", "write", "delete", "admin"}

    def test_custom_action_covers_itself(self) -> None:
        assert covered_actions("invoke") == {"invoke"}
        assert covered_actions("read") == {"read"}


class TestPrincipal:
    def test_parse_principal_kinds(self) -> None:
        assert parse_principal("service_account:svc-crm-sync") == (
            "service_account",
            "svc-crm-sync",
        )
        assert parse_principal("person:alice@example.com")[0] == "person"
        assert parse_principal("group:ops")[0] == "group"

    @pytest.mark.parametrize(
        "text",
        [
            "svc-crm-sync",
            "robot:x",
            "person:",
            "person:alice ",
            " person:a",
            "group:ｏps",
        ],
    )
    def test_parse_principal_rejects(self, text: str) -> None:
        with pytest.raises(InvalidPrincipalError):
            parse_principal(text)


_ALPHABET = "abcAZ09_-.~@+=,!$&'()/:%*\\?# \tàé\u0301ｃ"


_permission_texts = st.one_of(
    st.text(alphabet=_ALPHABET, max_size=24),
    st.builds(
        lambda system, resource, action: f"{system}:{resource}:{action}",
        st.text(alphabet="az09_.-A", max_size=5),
        st.text(alphabet=_ALPHABET, max_size=20),
        st.text(alphabet="az09_-A", max_size=5),
    ),
)


@settings(max_examples=600, deadline=None)
@given(_permission_texts)
def test_request_fast_path_agrees(text: str) -> None:
    try:
        expected: object = _parse_parts(text, wildcards=False)
    except InvalidPermissionError:
        expected = None
    try:
        request = parse_request(text)
        actual: object = (request.system, request.segments, request.action)
    except InvalidPermissionError:
        actual = None
    assert actual == expected


@settings(max_examples=400, deadline=None)
@given(
    st.sampled_from(["service_account:", "person:", "group:", "robot:", ""]),
    st.text(alphabet=_ALPHABET, max_size=16),
)
def test_principal_fast_path_agrees(kind: str, name: str) -> None:
    text = kind + name
    try:
        expected: object = _parse_principal_full(text)
    except InvalidPrincipalError:
        expected = None
    try:
        actual: object = parse_principal(text)
    except InvalidPrincipalError:
        actual = None
    assert actual == expected
