"""The compiled engine: decisions, explanations and the shared edge cases."""

import json
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from keysteward.authz.engine import Authorizer, check, compile_policy
from keysteward.authz.policy import AssignmentSpec, DenySpec, Policy, RoleSpec
from keysteward.authz.services import apply_policy
from keysteward.db import Store
from keysteward.identities.models import ServiceAccount

SA = "service_account:svc-crm-sync"


def _principal(case_id: str) -> str:
    kind, _, name = case_id.partition(":")
    return {"svc": "service_account"}[kind] + ":" + name


def _role(case_id: str) -> str:
    assert case_id.startswith("role:")
    return case_id.removeprefix("role:")


def _case_policy(case: dict[str, Any]) -> Policy:
    names = set(case.get("grants", {})) | set(case.get("role_parents", {}))
    names |= {r for roles in case.get("principals", {}).values() for r in roles}
    names |= set(case.get("denies", {}))
    roles = {
        _role(name): RoleSpec(
            _role(name),
            permissions=tuple(case.get("grants", {}).get(name, ())),
            includes=tuple(
                _role(parent) for parent in case.get("role_parents", {}).get(name, ())
            ),
        )
        for name in names
    }
    assignments = tuple(
        AssignmentSpec(_principal(principal), _role(role))
        for principal, held in case.get("principals", {}).items()
        for role in held
    )
    denies = tuple(
        DenySpec(permission, role=_role(role))
        for role, permissions in case.get("denies", {}).items()
        for permission in permissions
    )
    return Policy(roles=roles, assignments=assignments, denies=denies)


def _context_policy(check_case: dict[str, Any]) -> Policy:
    principal = _principal(check_case["principal"])
    permission = check_case["permission"]
    return Policy(
        roles={"agent": RoleSpec("agent", permissions=(permission,))},
        assignments=(AssignmentSpec(principal, "agent"),),
        denies=(
            DenySpec(
                permission,
                principal=principal,
                unless={"content_hash": tuple(check_case["approved"])},
            ),
        ),
    )


def _load_cases(shared_dir: Path) -> list[dict[str, Any]]:
    path = shared_dir / "cases" / "authz" / "cases.json"
    cases: list[dict[str, Any]] = json.loads(path.read_text())["cases"]
    return cases


def test_shared_cases_decide_as_expected(shared_dir: Path) -> None:
    cases = _load_cases(shared_dir)
    assert len(cases) >= 7
    for case in cases:
        for item in case["checks"]:
            if "context" in item:
                index = compile_policy(_context_policy(item))
                decision = index.check(
                    _principal(item["principal"]),
                    item["permission"],
                    context=item["context"],
                )
            else:
                index = compile_policy(_case_policy(case))
                decision = index.check(
                    _principal(item["principal"]), item["permission"]
                )
            label = f"{case['id']}: {item['principal']!r} {item['permission']!r}"
            assert decision.outcome == item["expect"], f"{label}: {decision.reason}"


def _index(**kwargs: Any) -> Any:
    return compile_policy(Policy(**kwargs))


class TestCheck:
    def test_no_grant_is_deny(self) -> None:
        decision = _index().check(SA, "crm:contacts:read")
        assert not decision
        assert "deny by default" in decision.reason

    def test_grant_explains_role_path(self) -> None:
        index = _index(
            roles={
                "crm-sync": RoleSpec("crm-sync", includes=("crm-reader",)),
                "crm-reader": RoleSpec("crm-reader", permissions=("crm:*:read",)),
            },
            assignments=(AssignmentSpec(SA, "crm-sync"),),
        )
        decision = index.check(SA, "crm:contacts:read")
        assert decision
        assert decision.grant is not None
        assert decision.grant.role_path == ("crm-sync", "crm-reader")
        assert decision.grant.permission == "crm:*:read"
        assert decision.to_dict()["grant"]["role"] == "crm-sync"

    def test_action_and_resource_form(self) -> None:
        index = _index(
            roles={"r": RoleSpec("r", permissions=("keysteward:secrets/db:read",))},
            assignments=(AssignmentSpec(SA, "r"),),
        )
        assert check(index, SA, "read", "keysteward:secrets/db")
        assert not check(index, SA, "write", "keysteward:secrets/db")

    def test_deny_names_winning_rule(self) -> None:
        index = _index(
            roles={"r": RoleSpec("r", permissions=("crm:*:admin",))},
            assignments=(AssignmentSpec(SA, "r"),),
            denies=(DenySpec("crm:contacts:delete", principal=SA),),
        )
        decision = index.check(SA, "crm:contacts:delete")
        assert not decision
        assert decision.deny is not None
        assert decision.deny.target == SA
        assert index.check(SA, "crm:contacts:write")

    def test_admin_implies_read_write_delete(self) -> None:
        index = _index(
            roles={"r": RoleSpec("r", permissions=("crm:deals:admin",))},
            assignments=(AssignmentSpec(SA, "r"),),
        )
        for action in ("read", "write", "delete", "admin"):
            assert index.check(SA, f"crm:deals:{action}"), action
        assert not index.check(SA, "crm:deals:invoke")

    def test_write_does_not_imply_read(self) -> None:
        index = _index(
            roles={"r": RoleSpec("r", permissions=("crm:deals:write",))},
            assignments=(AssignmentSpec(SA, "r"),),
        )
        assert not index.check(SA, "crm:deals:read")

    def test_deny_on_admin_covers_read(self) -> None:
        index = _index(
            roles={"r": RoleSpec("r", permissions=("crm:deals:read",))},
            assignments=(AssignmentSpec(SA, "r"),),
            denies=(DenySpec("crm:deals:admin", role="r"),),
        )
        assert not index.check(SA, "crm:deals:read")

    def test_expired_assignment_is_ignored(self) -> None:
        now = datetime(2026, 6, 1, tzinfo=UTC)
        index = compile_policy(
            Policy(
                roles={"r": RoleSpec("r", permissions=("crm:deals:read",))},
                assignments=(AssignmentSpec(SA, "r", now + timedelta(days=1)),),
            ),
            now=now,
        )
        assert index.check(SA, "crm:deals:read", at=now)
        assert not index.check(SA, "crm:deals:read", at=now + timedelta(days=2))
        assert index.valid_until == now + timedelta(days=1)

    def test_assignment_expired_at_build_is_dropped(self) -> None:
        past = datetime(2020, 1, 1, tzinfo=UTC)
        index = _index(
            roles={"r": RoleSpec("r", permissions=("crm:deals:read",))},
            assignments=(AssignmentSpec(SA, "r", past),),
        )
        assert not index.check(SA, "crm:deals:read")

    def test_invalid_request_fails_closed(self) -> None:
        index = _index(
            roles={"r": RoleSpec("r", permissions=("crm:**:read",))},
            assignments=(AssignmentSpec(SA, "r"),),
        )
        for permission in (
            "crm:a/../b:read",
            "crm:a//b:read",
            "crm:a%2Fb:read",
            "crm:*:read",
            "crm:ａ:read",
        ):
            decision = index.check(SA, permission)
            assert not decision, permission
            assert decision.reason.startswith("invalid request"), permission

    def test_memo_returns_same_decision(self) -> None:
        index = _index(
            roles={"r": RoleSpec("r", permissions=("crm:deals:read",))},
            assignments=(AssignmentSpec(SA, "r"),),
        )
        first = index.check(SA, "crm:deals:read")
        assert index.check(SA, "crm:deals:read") is first


def _add_account(store: Store, name: str) -> None:
    with store.session() as session:
        session.add(ServiceAccount(name=name))


def test_store_check_sees_applied_policy(store: Store) -> None:
    _add_account(store, "svc-crm-sync")
    assert not check(store, SA, "crm:contacts:read")
    policy = Policy(
        roles={"r": RoleSpec("r", permissions=("crm:contacts:read",))},
        assignments=(AssignmentSpec(SA, "r"),),
    )
    with store.session() as session:
        apply_policy(session, policy, base=None)
    authorizer = Authorizer(store, refresh_seconds=0)
    decision = authorizer.check(SA, "crm:contacts:read")
    assert decision
    assert authorizer.index().version == 1


def test_role_carrying_deny_revokes() -> None:
    granting = RoleSpec("marketing", permissions=("crm:contacts:delete",))
    contractor = RoleSpec("contractor")
    base = Policy(
        roles={"marketing": granting, "contractor": contractor},
        assignments=(AssignmentSpec(SA, "marketing"),),
        denies=(DenySpec("crm:contacts:delete", role="contractor"),),
    )
    assert compile_policy(base).check(SA, "crm:contacts:delete")
    both = Policy(
        roles=base.roles,
        assignments=(*base.assignments, AssignmentSpec(SA, "contractor")),
        denies=base.denies,
    )
    decision = compile_policy(both).check(SA, "crm:contacts:delete")
    assert not decision
    assert decision.deny is not None
    assert decision.deny.target == "role:contractor"
