"""A roster that marks someone departed raises the departure findings."""

import base64
import os
from datetime import UTC, datetime
from pathlib import Path

import pytest
from sqlalchemy import select

from common.offboarding_scenario import Scenario, build_scenario
from keysteward.audit.config import AuditConfig
from keysteward.audit.engine import run_audit
from keysteward.crypto.keyring import MASTER_KEY_SETTING, EnvironmentKeyProvider
from keysteward.db import Store
from keysteward.identities.models import Person
from keysteward.inventory.services import run_import
from keysteward.vault.keys import KeyRing

AS_OF = datetime(2026, 12, 20, tzinfo=UTC)


@pytest.fixture
def scenario(store: Store) -> Scenario:
    encoded = base64.b64encode(os.urandom(32)).decode()
    keyring = KeyRing(EnvironmentKeyProvider({MASTER_KEY_SETTING: encoded}))
    with store.session() as session:
        return build_scenario(session, keyring)


def _roster(path: Path) -> Path:
    roster = path / "roster.csv"
    roster.write_text(
        "Work Email,Full Name,Employment Status,Termination Date\n"
        "mia@example.com,Mia Manager,Active,\n"
        "lee@example.com,Lee Leaver,Terminated,2026-12-10\n"
        "sam@example.com,Sam Successor,Active,\n"
        "pat@example.com,Pat Peer,Active,\n"
        "ada@example.com,Ada Auditor,Active,\n",
        encoding="utf-8",
    )
    return roster


def test_roster_departure_raises_findings(
    store: Store, scenario: Scenario, tmp_path: Path
) -> None:
    run_import(store, [_roster(tmp_path)])
    with store.session() as session:
        leaver = session.scalar(select(Person).where(Person.email == scenario.leaver))
        assert leaver is not None
        assert leaver.status == "departed"

    result = run_audit(store, as_of=AS_OF, config=AuditConfig())

    found = {(f.credential, f.rule) for f in result.findings}
    assert ("deploy-key", "owner_departed") in found
    assert ("lee-pat", "owner_departed") in found
    assert ("crm-webhook", "account_owner_departed") in found
    assert ("openai-prod", "departed_reader") in found
    assert ("openai-dev", "departed_reader") not in found
    assert ("openai-dev", "owner_departed") not in found
    assert ("deploy-key", "account_owner_departed") not in found
    severities = {(f.credential, f.rule): f.severity for f in result.findings}
    assert severities[("lee-pat", "owner_departed")] == "critical"
    assert severities[("openai-prod", "departed_reader")] == "high"
