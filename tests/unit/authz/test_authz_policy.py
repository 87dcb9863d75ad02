"""The policy file: schema errors with lines, cycles, and the YAML round trip."""

from datetime import UTC, datetime
from pathlib import Path

import pytest

from keysteward.authz.errors import PolicyError, RoleCycleError
from keysteward.authz.policy import (
    AssignmentSpec,
    DenySpec,
    GroupSpec,
    Policy,
    RoleSpec,
    dump_policy,
    find_role_cycle,
    load_policy_file,
    parse_policy_text,
    write_base,
)

VALID = """\
# Access policy for the sales tools.
roles:
  crm-reader:
    description: Read CRM records
    permissions: ["hubspot:*:read"]
  crm-sync:
    permissions: [hubspot:contacts:write]
    includes: [crm-reader]
groups:
  ops:
    members: [person:alice@example.com]
assignments:
  - principal: service_account:svc-crm-sync
    role: crm-sync
  - {principal: group:ops, role: crm-reader, expires: 2030-01-01T00:00:00Z}
denies:
  - role: crm-reader
    permission: hubspot:contacts/private:read
  - principal: service_account:svc-agent
    permission: tools:shell:invoke
    unless: {content_hash: ["sha256:aa"]}
"""


def _error_lines(text: str) -> list[str]:
    with pytest.raises(PolicyError) as caught:
        parse_policy_text(text, "policy.yaml")
    return str(caught.value).splitlines()[1:]


class TestParse:
    def test_valid_file_parses(self) -> None:
        loaded = parse_policy_text(VALID)
        policy = loaded.policy
        assert loaded.base is None
        assert policy.roles["crm-sync"].includes == ("crm-reader",)
        assert policy.groups["ops"].members == ("person:alice@example.com",)
        assert policy.assignments[1].expires_at == datetime(2030, 1, 1, tzinfo=UTC)
        assert policy.denies[1].unless == {"content_hash": ("sha256:aa",)}

    def test_empty_file_is_empty_policy(self) -> None:
        assert parse_policy_text("").policy == Policy()

    def test_unknown_key_names_line(self) -> None:
        lines = _error_lines("roles:\n  a:\n    permissions: []\n    colour: red\n")
        assert lines == [
            "policy.yaml:4: unknown key 'colour' in role 'a'; expected one of "
            "description, permissions, includes"
        ]

    def test_bad_permission_names_line(self) -> None:
        lines = _error_lines(
            "roles:\n  a:\n    permissions:\n      - crm:a/../b:read\n"
        )
        assert len(lines) == 1
        assert lines[0].startswith("policy.yaml:4: invalid resource")

    def test_all_errors_reported(self) -> None:
        text = (
            "roles:\n"
            "  a:\n"
            "    permissions: [bad]\n"
            "assignments:\n"
            "  - principal: service_account:x\n"
            "    role: missing\n"
            "  - {principal: 'person:bob ', role: a}\n"
            "  - {role: a}\n"
        )
        lines = _error_lines(text)
        assert any(
            line.startswith("policy.yaml:3: invalid permission") for line in lines
        )
        assert any("unknown role 'missing'" in line for line in lines)
        assert any(line.startswith("policy.yaml:7:") for line in lines)
        assert any("missing principal" in line for line in lines)

    def test_expiry_needs_time_zone(self) -> None:
        text = (
            "roles: {a: {}}\n"
            "groups: {g: {members: []}}\n"
            "assignments:\n"
            "  - {principal: group:g, role: a, expires: 2026-01-01}\n"
        )
        lines = _error_lines(text)
        assert any("has no time zone" in line for line in lines)

    def test_undefined_group_rejected(self) -> None:
        lines = _error_lines(
            "roles: {a: {}}\nassignments: [{principal: group:g, role: a}]\n"
        )
        assert lines == [
            "policy.yaml:2: group:g is not defined; add it under groups with its "
            "members"
        ]

    def test_deny_with_two_targets_rejected(self) -> None:
        text = (
            "roles: {a: {}}\n"
            "denies: [{role: a, principal: person:x, permission: a:b:read}]\n"
        )
        assert "split it into two rules" in _error_lines(text)[0]

    def test_invalid_yaml_names_line(self) -> None:
        with pytest.raises(PolicyError, match=r"policy.yaml:3: invalid YAML"):
            parse_policy_text("roles:\n  a: [b\n  c: d\n", "policy.yaml")

    def test_missing_file_names_path(self, tmp_path: Path) -> None:
        with pytest.raises(PolicyError, match="not found"):
            load_policy_file(tmp_path / "none.yaml")


class TestCycles:
    def test_cycle_rejected_with_path(self) -> None:
        text = "roles:\n  a:\n    includes: [b]\n  b:\n    includes: [a]\n"
        with pytest.raises(RoleCycleError) as caught:
            parse_policy_text(text, "policy.yaml")
        assert caught.value.cycle == ["a", "b", "a"]
        assert "a -> b -> a" in str(caught.value)
        assert "policy.yaml:2:" in str(caught.value)

    def test_self_include_is_cycle(self) -> None:
        roles = {"a": RoleSpec("a", includes=("a",))}
        assert find_role_cycle(roles) == ["a", "a"]

    def test_diamond_is_not_cycle(self) -> None:
        roles = {
            "top": RoleSpec("top", includes=("left", "right")),
            "left": RoleSpec("left", includes=("base",)),
            "right": RoleSpec("right", includes=("base",)),
            "base": RoleSpec("base"),
        }
        assert find_role_cycle(roles) is None


class TestDump:
    def test_dump_round_trips(self) -> None:
        policy = Policy(
            roles={
                "a": RoleSpec("a", ("crm:*:read", "docs:café:read"), ("b",), "Reader"),
                "b": RoleSpec("b", ("crm:deals:admin",)),
            },
            groups={"ops": GroupSpec("ops", ("person:alice@example.com",), "Ops")},
            assignments=(
                AssignmentSpec("group:ops", "a", datetime(2030, 1, 1, tzinfo=UTC)),
                AssignmentSpec("service_account:svc", "b"),
            ),
            denies=(
                DenySpec("crm:deals:delete", role="b", description="no deletes"),
                DenySpec("tools:shell:invoke", unless={"content_hash": ("h1", "h2")}),
            ),
        )
        base = "0" * 64
        loaded = parse_policy_text(dump_policy(policy, base))
        assert loaded.base == base
        assert loaded.policy.roles == policy.roles
        assert loaded.policy.groups == policy.groups
        assert set(loaded.policy.assignments) == set(policy.assignments)
        assert {d.target for d in loaded.policy.denies} == {"role:b", "*"}

    def test_write_base_replaces_line(self, tmp_path: Path) -> None:
        path = tmp_path / "policy.yaml"
        path.write_text("# keep me\nbase: " + "1" * 64 + "\nroles: {}\n")
        write_base(path, "2" * 64)
        assert path.read_text() == "# keep me\nbase: " + "2" * 64 + "\nroles: {}\n"

    def test_write_base_inserts_after_comments(self, tmp_path: Path) -> None:
        path = tmp_path / "policy.yaml"
        path.write_text("# keep me\nroles: {}\n")
        write_base(path, "3" * 64)
        assert path.read_text() == "# keep me\nbase: " + "3" * 64 + "\nroles: {}\n"
