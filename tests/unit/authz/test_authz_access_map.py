"""The access map: principals, roles, systems, credentials and last use."""

import re
from datetime import UTC, datetime

from keysteward.authz.access_map import build_access_map, render_html, render_markdown
from keysteward.authz.policy import AssignmentSpec, GroupSpec, Policy, RoleSpec
from keysteward.authz.services import apply_policy
from keysteward.authz.usage import UsageRecord, record_usage
from keysteward.credentials.models import Credential
from keysteward.db import Store
from keysteward.identities.models import Person, ServiceAccount
from keysteward.systems.models import System

SA = "service_account:svc-crm-sync"
ALICE = "person:alice@example.com"
USED = datetime(2026, 11, 30, 8, 0, tzinfo=UTC)


def _populate(store: Store) -> None:
    with store.session() as session:
        account = ServiceAccount(name="svc-crm-sync")
        alice = Person(name="Alice <Ops>", email="alice@example.com")
        bob = Person(name="Bob", email="bob@example.com")
        hubspot = System(name="hubspot")
        session.add_all([account, alice, bob, hubspot])
        session.flush()
        session.add(
            Credential(
                name="HubSpot private app",
                system_id=hubspot.id,
                holder_service_account_id=account.id,
                source="test",
                source_id="hubspot-1",
                last_used_at=datetime(2026, 10, 1, tzinfo=UTC),
            )
        )
    policy = Policy(
        roles={
            "crm-sync": RoleSpec(
                "crm-sync", ("hubspot:contacts:write",), ("crm-reader",)
            ),
            "crm-reader": RoleSpec("crm-reader", ("hubspot:*:read", "drive:a:read")),
        },
        groups={"ops": GroupSpec("ops", (ALICE,))},
        assignments=(
            AssignmentSpec(SA, "crm-sync"),
            AssignmentSpec("group:ops", "crm-reader"),
        ),
    )
    with store.session() as session:
        apply_policy(session, policy, base=None)
        record_usage(session, [UsageRecord(SA, "hubspot:contacts:read", True, USED)])


def test_map_lists_every_principal(store: Store) -> None:
    _populate(store)
    with store.session() as session:
        access = build_access_map(session)
    entries = {entry.principal: entry for entry in access.principals}
    assert set(entries) == {SA, ALICE, "person:bob@example.com"}
    crm = entries[SA]
    assert [holding.role for holding in crm.roles] == ["crm-sync"]
    assert crm.permissions_by_system == {
        "drive": ["drive:a:read"],
        "hubspot": ["hubspot:*:read", "hubspot:contacts:write"],
    }
    assert [c.name for c in crm.credentials] == ["HubSpot private app"]
    assert crm.credentials[0].system == "hubspot"
    assert crm.last_used_at == USED
    alice = entries[ALICE]
    assert alice.roles[0].via_group == "group:ops"
    assert alice.last_used_at is None
    assert entries["person:bob@example.com"].roles == []
    assert access.role_systems["crm-sync"] == ["drive", "hubspot"]


def test_markdown_has_table_and_sections(store: Store) -> None:
    _populate(store)
    with store.session() as session:
        text = render_markdown(build_access_map(session))
    assert "| service_account:svc-crm-sync | active | crm-sync |" in text
    assert "## person:alice@example.com" in text
    assert "- crm-reader through group:ops" in text
    assert "HubSpot private app (api_key, hubspot, active)" in text


def test_html_is_self_contained(store: Store) -> None:
    _populate(store)
    with store.session() as session:
        page = render_html(build_access_map(session))
    assert page.startswith("<!doctype html>")
    assert "<svg" in page
    assert re.search(r"(src|href)=", page) is None
    assert "http://" not in page.replace('xmlns="http://www.w3.org/2000/svg"', "")
    assert "https://" not in page
    assert "Alice &lt;Ops&gt;" in page
    assert "Alice <Ops>" not in page
    assert page.count('class="group"') == 1
    # Two principal -> role edges, then two systems for each of the two roles.
    assert page.count("<line ") == 6


def test_markdown_escapes_html_names(store: Store) -> None:
    _populate(store)
    with store.session() as session:
        credential = session.query(Credential).one()
        credential.name = "<script>alert(1)</script> | key"
    with store.session() as session:
        text = render_markdown(build_access_map(session))
    assert "<script>" not in text
    assert "&lt;script&gt;alert(1)&lt;/script&gt; | key (api_key" in text
    assert "Name: Alice &lt;Ops&gt;" in text
    assert "Alice <Ops>" not in text
