"""A review campaign from start to evidence, against a real store."""

import base64
import csv
import io
import json
import os
from datetime import UTC, date, datetime, timedelta

import pytest
from sqlalchemy import select

from common.offboarding_scenario import Scenario, build_scenario
from keysteward.authz.models import Permission, Role, RoleGrant
from keysteward.authz.usage import UsageRecord, record_usage
from keysteward.crypto.keyring import MASTER_KEY_SETTING, EnvironmentKeyProvider
from keysteward.db import Store
from keysteward.errors import InvalidInputError
from keysteward.events.models import Event
from keysteward.identities.models import Person, ServiceAccount
from keysteward.offboarding.models import RotationRequest
from keysteward.offboarding.services import offboard_person
from keysteward.reviews.export import render_csv, render_html
from keysteward.reviews.models import Decision, ReviewItem
from keysteward.reviews.services import (
    accept_recommended,
    close_campaign,
    decide_item,
    find_campaign,
    reassign_item,
    send_reminders,
    start_campaign,
)
from keysteward.tokens.errors import AuthenticationError
from keysteward.tokens.services import authenticate_api_token
from keysteward.vault.keys import KeyRing

NOW = datetime.now(UTC)


@pytest.fixture
def scenario(store: Store) -> Scenario:
    encoded = base64.b64encode(os.urandom(32)).decode()
    keyring = KeyRing(EnvironmentKeyProvider({MASTER_KEY_SETTING: encoded}))
    with store.session() as session:
        built = build_scenario(session, keyring)
        _add_roles(session)
    return built


def _add_roles(session) -> None:
    people = {p.email: p for p in session.scalars(select(Person))}
    crm_sync = session.scalar(
        select(ServiceAccount).where(ServiceAccount.name == "crm-sync")
    )
    writer = Role(name="crm-writer")
    for resource, action in (
        ("contacts/*", "read"),
        ("contacts/*", "write"),
        ("deals/*", "read"),
    ):
        writer.permissions.append(
            Permission(system="crm", resource=resource, action=action)
        )
    billing = Role(name="billing-admin")
    billing.permissions.append(
        Permission(system="stripe", resource="charges/*", action="write")
    )
    session.add_all([writer, billing])
    session.flush()
    session.add_all(
        [
            RoleGrant(
                role_id=writer.id,
                principal_type="service_account",
                principal_id=crm_sync.id,
            ),
            RoleGrant(
                role_id=billing.id,
                principal_type="person",
                principal_id=people["pat@example.com"].id,
            ),
        ]
    )
    record_usage(
        session,
        [
            UsageRecord(
                "service_account:crm-sync",
                "crm:contacts/42:read",
                True,
                NOW - timedelta(days=1),
            )
        ],
    )


def _item(session, label: str) -> ReviewItem:
    item = session.scalar(select(ReviewItem).where(ReviewItem.subject_label == label))
    assert item is not None, label
    return item


def _authenticates(store: Store, token: str) -> bool:
    try:
        with store.session() as session:
            authenticate_api_token(session, token)
    except AuthenticationError:
        return False
    return True


def test_start_needs_fallback_reviewer(store: Store, scenario: Scenario) -> None:
    with (
        pytest.raises(InvalidInputError, match="--fallback-reviewer"),
        store.session() as session,
    ):
        start_campaign(session, actor="test", name="q")


def test_start_snapshots_scope(store: Store, scenario: Scenario) -> None:
    with store.session() as session:
        campaign = start_campaign(
            session, actor="test", name="q", fallback_reviewer=scenario.auditor
        )
        kinds = sorted(item.subject_type for item in campaign.items)
        pat = _item(session, "github/lee-pat")
        deploy = _item(session, "github/deploy-key")
        reduce = _item(session, "service_account:crm-sync -> crm-writer")
        billing = _item(session, "person:pat@example.com -> billing-admin")

        assert kinds.count("credential") == 5
        assert kinds.count("service_account") == 2
        assert kinds.count("role_assignment") == 3
        assert pat.reviewer == scenario.auditor
        assert pat.reviewee == scenario.leaver
        assert deploy.reviewer == scenario.leaver
        assert billing.reviewer == "mia@example.com"
        assert billing.recommendation == Decision.REVOKE
        assert reduce.recommendation == Decision.REDUCE
        assert reduce.recommended_permissions == ["crm:contacts/42:read"]
        assert reduce.facts["granted"] == [
            "crm:contacts/*:read",
            "crm:contacts/*:write",
            "crm:deals/*:read",
        ]


def test_campaign_applies_and_exports(store: Store, scenario: Scenario) -> None:
    with store.session() as session:
        campaign_id = start_campaign(
            session, actor="test", name="q", fallback_reviewer=scenario.auditor
        ).id

    with store.session() as session:
        account_item = _item(session, "service_account:crm-sync")
        decide_item(
            session, account_item, Decision.REVOKE, actor="test", comment="unused"
        )
        proof_event = session.get(Event, account_item.proof["event_id"])
        assert proof_event is not None
        assert proof_event.action == "review.apply"
        assert account_item.proof["state_after"]["status"] == "disabled"
    assert not _authenticates(store, scenario.account_token)

    with store.session() as session:
        decide_item(
            session, _item(session, "openai/openai-dev"), Decision.ROTATE, actor="test"
        )
        reader = _item(session, "person:lee@example.com -> prod-secret-reader")
        assert reader.recommendation == "keep"
        applied = accept_recommended(session, actor="test", reviewer="mia@example.com")
        # Lee read the secret in the window, so only Pat's unused role goes.
        assert applied["revoke"] == 1
        accept_recommended(session, actor="test", reviewer=scenario.leaver)

    with store.session() as session:
        grants = {
            (grant.principal_type, role.name, grant.principal_id)
            for grant, role in session.execute(
                select(RoleGrant, Role).join(Role, RoleGrant.role_id == Role.id)
            )
        }
        role_names = {name for _, name, _ in grants}
        assert "crm-writer" not in role_names
        assert "billing-admin" not in role_names
        assert "prod-secret-reader" in role_names
        reduced = session.scalar(
            select(Role).where(Role.name == "crm-writer.reduced.crm-sync")
        )
        assert reduced is not None
        assert [str(p) for p in reduced.permissions] == ["crm:contacts/42:read"]
        rotations = set(session.scalars(select(RotationRequest.credential_id)))
        assert scenario.unrelated_id in rotations

    with store.session() as session:
        open_item = _item(session, "github/lee-pat")
        with pytest.raises(InvalidInputError, match="reviewee"):
            reassign_item(session, open_item, scenario.leaver, actor="test")
        reminders = send_reminders(
            session, within_days=30, actor="test", today=date.today()
        )
        assert {r.reviewer for r in reminders} >= {scenario.auditor}

    with store.session() as session:
        campaign = find_campaign(session, campaign_id)
        closed = close_campaign(session, campaign, actor="test")
        assert sum(closed.values()) > 0
        assert closed.keys() == {"keep"}

    with store.session() as session:
        campaign = find_campaign(session, campaign_id)
        rows = list(csv.DictReader(io.StringIO(render_csv(campaign))))
        html = render_html(campaign)
    assert len(rows) == 10
    for row in rows:
        assert row["decision"], row
        assert json.loads(row["facts"]), row
        assert row["proof_event_id"], row
        assert row["snapshot_at"], row
    flagged = [row for row in rows if row["flagged"] == "yes"]
    assert flagged
    assert all(row["decision"] == "keep" for row in flagged)
    assert "Access review evidence: q" in html
    assert "<script" not in html


def test_decide_rejects_wrong_decision(store: Store, scenario: Scenario) -> None:
    with store.session() as session:
        start_campaign(
            session, actor="test", name="q", fallback_reviewer=scenario.auditor
        )
    with (
        pytest.raises(InvalidInputError, match="does not apply to credential"),
        store.session() as session,
    ):
        decide_item(
            session, _item(session, "github/lee-pat"), Decision.REDUCE, actor="test"
        )
    with store.session() as session:
        assert _item(session, "github/lee-pat").decision is None


def test_offboarding_reassigns_open_items(store: Store, scenario: Scenario) -> None:
    with store.session() as session:
        start_campaign(
            session, actor="test", name="q", fallback_reviewer=scenario.auditor
        )
    with store.session() as session:
        report = offboard_person(
            session, scenario.leaver, actor="test", successor_email=scenario.successor
        )
        moved = {
            entry["subject"]: entry["to"] for entry in report.review_items_reassigned
        }
        deploy = _item(session, "github/deploy-key")

        assert moved["github/deploy-key"] == scenario.successor
        assert deploy.reviewer == scenario.successor
        leftover = session.scalars(
            select(ReviewItem).where(ReviewItem.reviewer == scenario.leaver)
        ).all()
        assert leftover == []
