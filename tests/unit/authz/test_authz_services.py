"""The stored policy: plan, apply, export and the base check, on both backends."""

from datetime import UTC, datetime

import pytest
from sqlalchemy import func, select

from keysteward.authz.errors import StalePolicyError, UnknownPrincipalError
from keysteward.authz.models import DenyRule, Role, RoleGrant
from keysteward.authz.policy import (
    AssignmentSpec,
    DenySpec,
    GroupSpec,
    Policy,
    RoleSpec,
    dump_policy,
    parse_policy_text,
)
from keysteward.authz.services import (
    apply_policy,
    load_store_policy,
    plan_policy,
    policy_digest,
    read_policy_version,
)
from keysteward.db import Store
from keysteward.events.models import Event
from keysteward.identities.models import Person, ServiceAccount

SA = "service_account:svc-crm-sync"
ALICE = "person:alice@example.com"

POLICY = Policy(
    roles={
        "crm-reader": RoleSpec("crm-reader", ("hubspot:*:read",), (), "Read CRM"),
        "crm-sync": RoleSpec("crm-sync", ("hubspot:contacts:write",), ("crm-reader",)),
    },
    groups={"ops": GroupSpec("ops", (ALICE,), "Operations")},
    assignments=(
        AssignmentSpec(SA, "crm-sync"),
        AssignmentSpec("group:ops", "crm-reader", datetime(2030, 1, 1, tzinfo=UTC)),
    ),
    denies=(
        DenySpec("hubspot:contacts/private:read", role="crm-reader"),
        DenySpec("hubspot:deals:delete", principal=SA, description="no deletes"),
        DenySpec("tools:shell:invoke", unless={"content_hash": ("sha256:aa",)}),
    ),
)


@pytest.fixture
def people(store: Store) -> Store:
    with store.session() as session:
        session.add(ServiceAccount(name="svc-crm-sync"))
        session.add(Person(name="Alice", email="alice@example.com"))
    return store


def _apply(
    store: Store, policy: Policy, base: str | None = None, **kwargs: bool
) -> None:
    with store.session() as session:
        apply_policy(session, policy, base=base, **kwargs)


def test_apply_then_load_round_trips(people: Store) -> None:
    _apply(people, POLICY)
    with people.session() as session:
        loaded = load_store_policy(session)
        assert read_policy_version(session) == 1
    assert policy_digest(loaded) == policy_digest(POLICY)
    assert loaded.roles["crm-sync"].includes == ("crm-reader",)
    assert loaded.groups["ops"].members == (ALICE,)


def test_export_applies_to_empty_plan(people: Store) -> None:
    _apply(people, POLICY)
    with people.session() as session:
        stored = load_store_policy(session)
        exported = parse_policy_text(dump_policy(stored, policy_digest(stored)))
        plan = plan_policy(session, exported.policy)
    assert plan.is_empty
    assert exported.base == plan.store_digest


def test_plan_lists_signed_changes(people: Store) -> None:
    _apply(people, POLICY)
    changed = Policy(
        roles={
            "crm-reader": RoleSpec("crm-reader", ("hubspot:contacts:read",)),
            "auditor": RoleSpec("auditor", ("events:log:read",)),
        },
        assignments=(AssignmentSpec(SA, "crm-reader"),),
    )
    with people.session() as session:
        plan = plan_policy(session, changed)
    rendered = plan.render()
    assert "+ role auditor" in rendered
    assert "- role crm-sync" in rendered
    assert "~ role crm-reader" in rendered
    assert "+ permission hubspot:contacts:read" in rendered
    assert "- permission hubspot:*:read" in rendered
    assert "- group ops" in rendered
    assert plan.counts()["add"] >= 2


def test_apply_records_event_and_version(people: Store) -> None:
    _apply(people, POLICY)
    with people.session() as session:
        digest = policy_digest(load_store_policy(session))
    smaller = Policy(roles={"r": RoleSpec("r", ("crm:a:read",))})
    _apply(people, smaller, base=digest)
    with people.session() as session:
        events = session.scalars(
            select(Event).where(Event.action == "authz.policy.apply")
        ).all()
        assert read_policy_version(session) == 2
        assert session.scalar(select(func.count()).select_from(RoleGrant)) == 0
        assert session.scalar(select(func.count()).select_from(DenyRule)) == 0
    assert len(events) == 2
    assert events[1].details["version"] == 2
    assert events[1].details["counts"]["remove"] >= 1


def test_stale_base_rejected(people: Store) -> None:
    _apply(people, POLICY)
    stale = "0" * 64
    other = Policy(roles={"r": RoleSpec("r", ("crm:a:read",))})
    with pytest.raises(StalePolicyError, match="changed since the file's base"):
        _apply(people, other, base=stale)
    with people.session() as session:
        assert set(load_store_policy(session).roles) == {"crm-reader", "crm-sync"}
        assert read_policy_version(session) == 1


def test_missing_base_rejected_on_nonempty(people: Store) -> None:
    _apply(people, POLICY)
    other = Policy(roles={"r": RoleSpec("r", ("crm:a:read",))})
    with pytest.raises(StalePolicyError, match="no 'base:'"):
        _apply(people, other)


def test_force_overrides_stale_base(people: Store) -> None:
    _apply(people, POLICY)
    other = Policy(roles={"r": RoleSpec("r", ("crm:a:read",))})
    _apply(people, other, base="0" * 64, force=True)
    with people.session() as session:
        assert set(load_store_policy(session).roles) == {"r"}


def test_unknown_principal_leaves_store(people: Store) -> None:
    _apply(people, POLICY)
    with people.session() as session:
        digest = policy_digest(load_store_policy(session))
    bad = Policy(
        roles={"r": RoleSpec("r", ("crm:a:read",))},
        assignments=(AssignmentSpec("service_account:ghost", "r"),),
    )
    with pytest.raises(UnknownPrincipalError, match="service_account:ghost"):
        _apply(people, bad, base=digest)
    with people.session() as session:
        assert policy_digest(load_store_policy(session)) == digest
        assert session.scalar(select(func.count()).select_from(Role)) == 2


def test_unchanged_apply_records_event_only(people: Store) -> None:
    _apply(people, POLICY)
    _apply(people, POLICY, base="0" * 64)
    with people.session() as session:
        assert read_policy_version(session) == 1
        events = session.scalars(
            select(Event).where(Event.action == "authz.policy.apply")
        ).all()
    assert len(events) == 2
    assert events[1].details["changed"] is False
