"""Review recommendations weigh credential use and vault reads in the window."""

from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import select

from keysteward.authz.models import Permission, Role, RoleGrant
from keysteward.credentials.models import Credential
from keysteward.db import Store
from keysteward.events.services import record_event
from keysteward.findings.models import Finding
from keysteward.identities.models import Person, ServiceAccount
from keysteward.reviews.models import Decision
from keysteward.reviews.scope import ScopeItem, snapshot_scope
from keysteward.tokens.principals import Principal, PrincipalType
from keysteward.tokens.services import issue_api_token
from keysteward.vault.services import READ_ACTION

NOW = datetime.now(UTC)


def _credential(name: str, account: ServiceAccount, last_used: datetime) -> Credential:
    return Credential(
        name=name,
        holder_service_account=account,
        last_used_at=last_used,
        source="test",
        source_id=name,
    )


@pytest.fixture
def items(store: Store) -> dict[str, ScopeItem]:
    """Snapshot a scope with one busy, one reading and one idle account."""
    with store.session() as session:
        carol = Person(name="Carol", email="carol@example.com")
        busy = ServiceAccount(name="svc-crm-sync", owner=carol, purpose="CRM")
        reader = ServiceAccount(name="crm-sync", owner=carol, purpose="CRM")
        idle = ServiceAccount(name="old-sync", owner=carol, purpose="old")
        session.add_all([carol, busy, reader, idle])
        session.flush()

        aws_key = _credential("aws-key", busy, NOW - timedelta(days=1))
        stale_key = _credential("stale-key", idle, NOW - timedelta(days=200))
        session.add_all([aws_key, stale_key])
        session.flush()
        session.add(
            Finding(
                credential_id=aws_key.id,
                rule="unused",
                severity="medium",
                title="not used",
                recommendation="revoke it",
            )
        )

        role = Role(name="hubspot-reader")
        role.permissions.append(
            Permission(system="keysteward", resource="secrets/hubspot", action="read")
        )
        session.add(role)
        session.flush()
        session.add(
            RoleGrant(
                role_id=role.id,
                principal_type="service_account",
                principal_id=reader.id,
            )
        )
        issue_api_token(
            session,
            Principal(PrincipalType.SERVICE_ACCOUNT, reader.id, reader.name),
            actor="cli:test",
        )
        record_event(
            session,
            actor="service_account:crm-sync",
            action=READ_ACTION,
            target_type="secret",
            target_id="hubspot",
            outcome="allowed",
            details={"via": "run"},
        )

    with store.session() as session:
        scoped = snapshot_scope(session, NOW)
        names = set(session.scalars(select(ServiceAccount.name)))
    assert names == {"svc-crm-sync", "crm-sync", "old-sync"}
    return {item.subject_label: item for item in scoped}


def test_credential_use_keeps_account(items: dict[str, ScopeItem]) -> None:
    account = items["service_account:svc-crm-sync"]
    assert account.recommendation == Decision.KEEP
    assert "credential used" in account.reason


def test_secret_read_keeps_account(items: dict[str, ScopeItem]) -> None:
    account = items["service_account:crm-sync"]
    assert account.recommendation == Decision.KEEP
    assert "secret read" in account.reason
    assert account.facts["secrets_read"] == ["hubspot"]


def test_secret_read_keeps_role(items: dict[str, ScopeItem]) -> None:
    assignment = items["service_account:crm-sync -> hubspot-reader"]
    assert assignment.recommendation == Decision.KEEP
    assert assignment.facts["used"] == ["keysteward:secrets/hubspot:read"]


def test_used_credential_not_revoked(items: dict[str, ScopeItem]) -> None:
    credential = next(
        item for label, item in items.items() if label.endswith("/aws-key")
    )
    assert credential.recommendation == Decision.KEEP
    assert credential.reason.startswith("used ")
    assert "unused" in credential.reason


def test_idle_account_still_revoked(items: dict[str, ScopeItem]) -> None:
    account = items["service_account:old-sync"]
    assert account.recommendation == Decision.REVOKE
    assert account.reason == "no active tokens and no roles"
