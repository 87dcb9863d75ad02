"""Each audit rule fires on a minimal case and stays silent on the healthy twin."""

from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import date
from typing import Any

import pytest

from common.audit_inventory import AS_OF, InventoryBuilder, days_ago
from keysteward.audit.config import INVENTORY_RULE_IDS, RULE_IDS, AuditConfig
from keysteward.audit.engine import run_audit
from keysteward.audit.results import RankedFinding
from keysteward.audit.rules import RULES
from keysteward.db import Store

Setup = Callable[[InventoryBuilder], dict[str, Any]]


@dataclass
class Case:
    rule: str
    severity: str
    # Returns the column values of the problem credential.
    problem: Setup
    # Column values of the healthy twin; empty means the default healthy key.
    twin: dict[str, Any] = field(default_factory=dict)


def departed(builder: InventoryBuilder) -> Any:
    return builder.person("Bob Former", departed_on=date(2026, 8, 15))


def disabled_account(builder: InventoryBuilder) -> dict[str, Any]:
    account = builder.service_account("svc-old", builder.owner, status="disabled")
    return {"holder_service_account_id": account.id}


def orphan(builder: InventoryBuilder) -> dict[str, Any]:
    account = builder.service_account("svc-orphan", owner=None)
    return {"owner_id": None, "holder_service_account_id": account.id}


def decommissioned(builder: InventoryBuilder) -> dict[str, Any]:
    builder.system("legacy-crm", status="decommissioned")
    return {"system": "legacy-crm"}


def personal(builder: InventoryBuilder, **attributes: Any) -> dict[str, Any]:
    return {
        "holder_service_account_id": None,
        "holder_person_id": builder.owner.id,
        "attributes": attributes,
    }


CASES = [
    Case("owner_departed", "high", lambda b: {"owner_id": departed(b).id}),
    Case(
        "owner_departed",
        "critical",
        lambda b: {"owner_id": departed(b).id, "privilege": "admin"},
    ),
    Case("owner_departed", "medium", lambda b: {"created_by_id": departed(b).id}),
    Case("system_decommissioned", "medium", decommissioned),
    Case("holder_disabled", "medium", disabled_account),
    Case("no_owner", "medium", orphan),
    Case(
        "unknown_access",
        "low",
        lambda b: {"scopes": [], "privilege": "unknown"},
        twin={"scopes": [], "privilege": "read"},
    ),
    Case(
        "rotation_overdue",
        "low",
        lambda b: {"created_at": days_ago(120)},
        twin={"created_at": days_ago(120), "last_rotated_at": days_ago(10)},
    ),
    Case("rotation_overdue", "medium", lambda b: {"created_at": days_ago(200)}),
    Case(
        "never_used",
        "medium",
        lambda b: {"last_used_at": None},
        twin={"last_used_at": None, "attributes": {"usage_known": False}},
    ),
    Case(
        "never_used",
        "high",
        lambda b: {"last_used_at": None, "privilege": "write"},
    ),
    Case("unused", "low", lambda b: {"last_used_at": days_ago(120)}),
    Case(
        "expired_active",
        "medium",
        lambda b: {"expires_at": days_ago(3), "last_used_at": days_ago(5)},
        twin={"expires_at": days_ago(-30)},
    ),
    Case("expired_active", "high", lambda b: {"expires_at": days_ago(3)}),
    Case(
        "no_expiry",
        "low",
        lambda b: {"kind": "personal_access_token"},
        twin={"kind": "personal_access_token", "expires_at": days_ago(-60)},
    ),
    Case(
        "no_expiry",
        "low",
        lambda b: {"kind": "oauth_token", "expires_at": days_ago(-3000)},
    ),
    Case(
        "personal_credential_automation",
        "medium",
        lambda b: personal(b, used_by=["nightly-sync"]),
        twin={"holder_service_account_id": None, "attributes": {"used_by": []}},
    ),
    Case(
        "excess_privilege",
        "medium",
        lambda b: {"privilege": "admin", "attributes": {"observed_privilege": "read"}},
        twin={"privilege": "admin", "attributes": {"observed_privilege": "admin"}},
    ),
    Case(
        "excess_privilege",
        "low",
        lambda b: {
            "scopes": ["repo:read", "org:admin"],
            "attributes": {"used_scopes": ["repo:read"]},
        },
        twin={"scopes": ["s3:*"], "attributes": {"used_scopes": ["s3:GetObject"]}},
    ),
    Case(
        "plaintext_transport",
        "high",
        lambda b: {
            "kind": "webhook_url",
            "attributes": {
                "endpoint": "http://hooks.example.com/services",
                "embedded_secret": True,
            },
        },
        twin={
            "kind": "webhook_url",
            "attributes": {
                "endpoint": "https://hooks.example.com/services",
                "embedded_secret": True,
            },
        },
    ),
    Case(
        "found_outside_vault",
        "medium",
        lambda b: {"attributes": {"stored_in": ".env"}},
        twin={"attributes": {"stored_in": "1Password"}},
    ),
    Case(
        "found_outside_vault",
        "high",
        lambda b: {
            "attributes": {"discovered_in": [{"path": "deploy/run.sh", "line": 4}]}
        },
    ),
    Case(
        "found_outside_vault", "critical", lambda b: {"attributes": {"exposed": True}}
    ),
]


def _audit(store: Store, config: AuditConfig | None = None) -> list[RankedFinding]:
    return run_audit(store, as_of=AS_OF, config=config or AuditConfig()).findings


def _case_id(case: Case) -> str:
    return f"{case.rule}-{case.severity}"


@pytest.mark.parametrize("case", CASES, ids=[_case_id(case) for case in CASES])
def test_rule_fires_and_twin_silent(store: Store, case: Case) -> None:
    with store.session() as session:
        builder = InventoryBuilder(session)
        values = case.problem(builder)
        problem = builder.credential(**values).id
        twin = builder.credential(**case.twin).id

    findings = _audit(store)

    fired = [f for f in findings if f.credential_id == problem and f.rule == case.rule]
    assert len(fired) == 1
    assert fired[0].severity == case.severity
    assert [f.rule for f in findings if f.credential_id == twin] == []


def test_every_rule_has_a_case() -> None:
    # duplicate_secret needs two credentials, so it has a separate test.
    covered = {case.rule for case in CASES} | {"duplicate_secret"}
    assert covered == set(INVENTORY_RULE_IDS)


def test_registry_matches_rule_ids() -> None:
    assert set(RULES) == set(RULE_IDS)


def test_healthy_credential_has_no_findings(store: Store) -> None:
    with store.session() as session:
        InventoryBuilder(session).credential()
    assert _audit(store) == []


def test_duplicate_secret_flags_both(store: Store) -> None:
    shared = "ab" * 32
    with store.session() as session:
        builder = InventoryBuilder(session)
        first = builder.credential(fingerprint=shared).id
        second = builder.credential(system="aws", fingerprint=shared).id
        alone = builder.credential(fingerprint="cd" * 32).id

    findings = [f for f in _audit(store) if f.rule == "duplicate_secret"]

    assert sorted(f.credential_id for f in findings) == [first, second]
    assert all(f.severity == "medium" for f in findings)
    assert all(f.evidence["places"] == 2 for f in findings)
    assert alone not in {f.credential_id for f in findings}


def test_duplicate_ignores_revoked_copy(store: Store) -> None:
    shared = "ef" * 32
    with store.session() as session:
        builder = InventoryBuilder(session)
        builder.credential(fingerprint=shared)
        builder.credential(fingerprint=shared, status="revoked")
    assert [f.rule for f in _audit(store)] == []


def test_unused_rules_need_usage_known(store: Store) -> None:
    with store.session() as session:
        builder = InventoryBuilder(session)
        builder.credential(last_used_at=None, attributes={"usage_known": False})
        builder.credential(
            last_used_at=days_ago(400), attributes={"usage_known": False}
        )
    assert _audit(store) == []


def test_system_managed_skips_rotation(store: Store) -> None:
    with store.session() as session:
        builder = InventoryBuilder(session)
        builder.credential(
            kind="service_account_key",
            created_at=days_ago(900),
            attributes={"system_managed": True},
        )
    assert _audit(store) == []


def test_inactive_credentials_not_evaluated(store: Store) -> None:
    with store.session() as session:
        builder = InventoryBuilder(session)
        builder.credential(status="inactive", owner_id=departed(builder).id)
        builder.credential(status="revoked", created_at=days_ago(900))
    assert _audit(store) == []


def test_departure_after_as_of_ignored(store: Store) -> None:
    with store.session() as session:
        builder = InventoryBuilder(session)
        leaving = builder.person("Lee Later", departed_on=date(2027, 1, 31))
        builder.credential(owner_id=leaving.id)
    assert _audit(store) == []


def test_departed_holder_is_owner_departed(store: Store) -> None:
    with store.session() as session:
        builder = InventoryBuilder(session)
        gone = departed(builder)
        credential = builder.credential(
            holder_service_account_id=None, holder_person_id=gone.id
        ).id

    fired = [f for f in _audit(store) if f.rule == "owner_departed"]

    assert [f.credential_id for f in fired] == [credential]
    assert fired[0].severity == "high"
    assert "holder" in fired[0].evidence


def test_evidence_holds_no_secret(store: Store) -> None:
    secret = "ghp_" + "a1B2" * 9
    with store.session() as session:
        builder = InventoryBuilder(session)
        builder.credential(
            secret_hint=secret[-4:],
            attributes={"stored_in": "code", "endpoint": "http://example.com/hook"},
        )
    findings = _audit(store)
    assert findings
    assert all(secret not in repr(f.as_dict()) for f in findings)
