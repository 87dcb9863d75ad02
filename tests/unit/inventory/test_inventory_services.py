"""Import into a real store: upsert, merge, retire, dry run, rollback, links."""

import json
import shutil
from pathlib import Path

import pytest
from sqlalchemy import func, select, text

from keysteward.config import Settings
from keysteward.credentials.models import Credential
from keysteward.db import Base, Store, open_store
from keysteward.events.models import Event
from keysteward.identities.models import ExternalAccount, Person, ServiceAccount
from keysteward.inventory.errors import ImportFileError
from keysteward.inventory.export import dump_inventory, export_inventory
from keysteward.inventory.services import run_import
from keysteward.tokens.accounts import disable_service_account


def formats(shared_dir: Path, *names: str) -> list[Path]:
    return [shared_dir / "formats" / name for name in names]


def credential(store: Store, source: str, source_id: str) -> Credential:
    with store.session() as session:
        found = session.scalar(
            select(Credential).where(
                Credential.source == source, Credential.source_id == source_id
            )
        )
        assert found is not None, f"{source} {source_id} not stored"
        return found


def count(store: Store, model: type) -> int:
    with store.session() as session:
        return session.scalar(select(func.count()).select_from(model)) or 0


def test_reimport_changes_nothing(store: Store, shared_dir: Path) -> None:
    first = run_import(store, [shared_dir / "formats"])
    assert first.counts()["added"] == 45
    second = run_import(store, [shared_dir / "formats"])
    assert second.counts()["added"] == 0
    assert second.counts()["changed"] == 0
    assert second.counts()["retired"] == 0
    assert second.counts()["people_added"] == 0
    assert second.counts()["unchanged"] == 45


def test_aws_listing_merges_into_report_key(store: Store, shared_dir: Path) -> None:
    run_import(store, formats(shared_dir, "aws_iam_list_access_keys.json"))
    run_import(store, formats(shared_dir, "aws_iam_credential_report.csv"))
    with store.session() as session:
        keys = session.scalars(
            select(Credential).where(Credential.kind == "access_key")
        ).all()
    by_key = {k.attributes.get("access_key_id"): k for k in keys}
    assert len(keys) == 4
    merged = by_key["AKIAEXAMPLEFAKE00002"]
    assert merged.source_id == "AKIAEXAMPLEFAKE00002"
    assert merged.attributes["key_slot"] == 2
    assert merged.attributes["last_used_service"] == "redshift"


def test_aws_last_used_matches_never_used_key(store: Store, shared_dir: Path) -> None:
    run_import(
        store,
        formats(
            shared_dir,
            "aws_iam_credential_report.csv",
            "aws_iam_list_access_keys.json",
            "aws_iam_get_access_key_last_used__never_used.json",
        ),
    )
    key = credential(
        store,
        "aws",
        "arn:aws:iam::111122223333:user/automation/svc-analytics-etl#access_key_1",
    )
    assert key.attributes["access_key_id"] == "AKIAEXAMPLEFAKE00001"
    assert key.last_used_at is None
    assert key.attributes["usage_known"] is True


def test_retire_on_disappearance(
    store: Store, shared_dir: Path, tmp_path: Path
) -> None:
    source = shared_dir / "formats" / "openai_admin_api_keys_list.json"
    run_import(store, [source])
    document = json.loads(source.read_text())
    document["data"] = document["data"][:1]
    fresh = tmp_path / "openai_admin_api_keys_list.json"
    fresh.write_text(json.dumps(document))
    report = run_import(store, [fresh])
    assert [entry["source_id"] for entry in report.retired] == ["key_FAKEadmin0002"]
    retired = credential(store, "openai", "key_FAKEadmin0002")
    assert retired.status == "retired"
    assert retired.attributes["status_before_retired"] == "active"
    assert credential(store, "openai", "key_FAKEadmin0001").status == "active"
    assert count(store, Credential) == 2
    again = run_import(store, [source])
    assert again.counts()["changed"] == 1
    assert credential(store, "openai", "key_FAKEadmin0002").status == "active"


def test_other_scope_not_retired(
    store: Store, shared_dir: Path, tmp_path: Path
) -> None:
    run_import(store, formats(shared_dir, "openai_project_api_keys_list.json"))
    source = shared_dir / "formats" / "openai_project_api_keys_list.json"
    document = json.loads(source.read_text())
    document["data"] = document["data"][1:]
    document["data"][0]["id"] = "key_FAKEother0001"
    other = tmp_path / "keys_proj_other.json"
    other.write_text(json.dumps(document))
    report = run_import(store, [other])
    assert report.counts()["retired"] == 0
    assert report.counts()["added"] == 1
    assert credential(store, "openai", "key_FAKEproj0001").status == "active"


def test_dry_run_writes_nothing(store: Store, shared_dir: Path) -> None:
    report = run_import(store, [shared_dir / "formats"], dry_run=True)
    assert report.counts()["added"] == 45
    assert report.dry_run is True
    assert count(store, Credential) == 0
    assert count(store, Person) == 0
    assert count(store, Event) == 0


def test_dry_run_lists_changed_fields(
    store: Store, shared_dir: Path, tmp_path: Path
) -> None:
    source = shared_dir / "formats" / "okta_api_tokens_list.json"
    run_import(store, [source])
    document = json.loads(source.read_text())
    document[1]["expiresAt"] = "2027-02-01T00:00:00.000Z"
    changed = tmp_path / "okta.json"
    changed.write_text(json.dumps(document))
    report = run_import(store, [changed], dry_run=True)
    assert report.changed == [
        {
            "source": "okta",
            "source_id": "00Tfake0000000000002",
            "name": "siem-log-export",
            "fields": ["attributes", "expires_at"],
        }
    ]
    stored = credential(store, "okta", "00Tfake0000000000002")
    assert stored.expires_at is not None
    assert stored.expires_at.date().isoformat() == "2026-12-12"


def test_invalid_file_leaves_store(
    store: Store, shared_dir: Path, tmp_path: Path
) -> None:
    run_import(store, formats(shared_dir, "okta_api_tokens_list.json"))
    before = count(store, Credential)
    folder = tmp_path / "exports"
    folder.mkdir()
    shutil.copy(shared_dir / "formats" / "anthropic_admin_api_keys_list.json", folder)
    broken = json.loads(
        (shared_dir / "formats" / "stripe_v2_iam_api_keys_list.json").read_text()
    )
    broken["data"][1]["created"] = "yesterday-ish"
    (folder / "stripe.json").write_text(json.dumps(broken))
    with pytest.raises(ImportFileError) as caught:
        run_import(store, [folder])
    assert str(caught.value) == (
        "stripe.json: data[1]: invalid field 'created', found 'yesterday-ish'; "
        "expected a date such as 2026-12-04 or 2026-12-04T10:00:00Z"
    )
    assert count(store, Credential) == before


def test_stripe_token_never_stored(store: Store, shared_dir: Path) -> None:
    run_import(store, formats(shared_dir, "stripe_v2_iam_api_keys_list.json"))
    token = "REDACTED-FAKE-TESTMODE-TOKEN-IMPORTER-MUST-DROP"
    assert count(store, Credential) == 2
    with store.engine.connect() as connection:
        for table in Base.metadata.sorted_tables:
            for row in connection.execute(table.select()):
                for value in row:
                    assert token not in str(value), f"token found in {table.name}"
                    assert "encrypted_secret" not in str(value)


def test_import_records_event(store: Store, shared_dir: Path) -> None:
    run_import(
        store, formats(shared_dir, "anthropic_admin_api_keys_list.json"), actor="t"
    )
    with store.session() as session:
        (event,) = session.scalars(select(Event)).all()
    assert event.action == "inventory.import"
    assert event.actor == "t"
    assert event.details["added"] == 3
    assert event.details["files"] == [
        {"file": "anthropic_admin_api_keys_list.json", "format": "anthropic.api_keys"}
    ]


def test_roster_takes_over_placeholder(
    store: Store, shared_dir: Path, tmp_path: Path
) -> None:
    run_import(store, formats(shared_dir, "github_org_pat_grants.json"))
    with store.session() as session:
        placeholder = session.scalar(
            select(Person).where(Person.email.like("github.bob-former-example@%"))
        )
        assert placeholder is not None
        assert placeholder.attributes == {"source": "github", "placeholder": True}
    roster = tmp_path / "roster.csv"
    roster.write_text(
        "name,email,status,departure date,github login\n"
        "Bob Former,bob.former@example.com,departed,2026-08-15,bob-former-example\n"
    )
    report = run_import(store, [roster])
    assert report.counts()["people_added"] == 0
    token = credential(store, "github", "fine_grained_pat:8800042")
    with store.session() as session:
        owner = session.get(Person, token.owner_id)
        assert owner is not None
        assert owner.email == "bob.former@example.com"
        assert owner.status == "departed"
        assert "placeholder" not in owner.attributes


def test_roster_merges_placeholder_into_person(
    store: Store, shared_dir: Path, tmp_path: Path
) -> None:
    roster = tmp_path / "roster.csv"
    roster.write_text("name,email,status\nBob Former,bob.former@example.com,active\n")
    run_import(store, [roster])
    run_import(store, formats(shared_dir, "okta_api_tokens_list.json"))
    linked = tmp_path / "roster2.csv"
    linked.write_text(
        "name,email,status,okta user id\n"
        "Bob Former,bob.former@example.com,departed,00ufake00000bobformer\n"
    )
    run_import(store, [linked])
    token = credential(store, "okta", "00Tfake0000000000001")
    with store.session() as session:
        owner = session.get(Person, token.owner_id)
        assert owner is not None
        assert owner.email == "bob.former@example.com"
        assert token.holder_person_id == owner.id
        leftovers = session.scalars(
            select(Person).where(Person.email.like("okta.00ufake00000bobformer@%"))
        ).all()
        assert leftovers == []
        account = session.scalar(
            select(ExternalAccount).where(
                ExternalAccount.account_id == "00ufake00000bobformer"
            )
        )
        assert account is not None
        assert account.person_id == owner.id


def test_native_round_trip(store: Store, shared_dir: Path, tmp_path: Path) -> None:
    run_import(store, [shared_dir / "formats"])
    with store.session() as session:
        first = dump_inventory(export_inventory(session), "yaml")
    path = tmp_path / "inventory.yaml"
    path.write_text(first)
    target = open_store(Settings(home=tmp_path / "fresh"))
    try:
        report = run_import(target, [path], source="native")
        assert report.counts()["added"] == 45
        with target.session() as session:
            second = dump_inventory(export_inventory(session), "yaml")
        assert second == first
        again = run_import(target, [path])
        assert again.counts()["changed"] == 0
        assert again.counts()["people_changed"] == 0
    finally:
        target.engine.dispose()


def test_patch_ambiguity_is_an_error(store: Store, tmp_path: Path) -> None:
    listing = tmp_path / "keys.json"
    listing.write_text(
        json.dumps(
            {
                "AccessKeyMetadata": [
                    {
                        "UserName": "svc-x",
                        "AccessKeyId": "AKIA" + "A" * 16,
                        "Status": "Active",
                        "CreateDate": "2026-01-01T00:00:00Z",
                    },
                    {
                        "UserName": "svc-x",
                        "AccessKeyId": "AKIA" + "B" * 16,
                        "Status": "Active",
                        "CreateDate": "2026-02-01T00:00:00Z",
                    },
                ]
            }
        )
    )
    usage = tmp_path / "usage.json"
    usage.write_text(
        json.dumps({"UserName": "svc-x", "AccessKeyLastUsed": {"Region": "N/A"}})
    )
    run_import(store, [listing])
    with pytest.raises(Exception, match="matches 2 credentials") as caught:
        run_import(store, [usage])
    assert "AccessKeyId" in str(caught.value)
    with store.engine.connect() as connection:
        assert connection.execute(text("SELECT count(*) FROM events")).scalar() == 1


def test_progress_reports_each_file(store: Store, shared_dir: Path) -> None:
    steps: list[tuple[str, int, int]] = []
    names = ("okta_api_tokens_list.json", "anthropic_admin_api_keys_list.json")
    run_import(store, formats(shared_dir, *names), progress=lambda *s: steps.append(s))
    assert [step[1] for step in steps] == [0, 1, 2, 3, 4]
    assert {step[2] for step in steps} == {4}
    assert steps[0][0] == "reading okta_api_tokens_list.json"
    assert steps[2][0] == "applying anthropic_admin_api_keys_list.json"
    assert steps[-1][0] == "done"


def test_access_analyzer_marks_user_keys(store: Store, shared_dir: Path) -> None:
    names = (
        "aws_iam_credential_report.csv",
        "aws_access_analyzer_list_findings_v2.json",
    )
    run_import(store, formats(shared_dir, *names))
    arn = "arn:aws:iam::111122223333:user/automation/svc-analytics-etl"
    for slot in (1, 2):
        key = credential(store, "aws", f"{arn}#access_key_{slot}")
        finding = key.attributes["access_analyzer"]
        assert finding["type"] == "UnusedIAMUserAccessKey"
        assert finding["id"] == "00000000-fake-4000-8000-000000000001"
    other = credential(
        store,
        "aws",
        "arn:aws:iam::111122223333:user/automation/svc-crm-sync#access_key_1",
    )
    assert "access_analyzer" not in other.attributes


NATIVE_ACCOUNT = """\
keysteward_inventory: 1
people:
- email: carol@example.com
  name: Carol
service_accounts:
- name: svc-crm-sync
  purpose: Nightly CRM export
  owner: carol@example.com
  status: {status}
"""


def _account_status(store: Store, name: str) -> str:
    with store.session() as session:
        account = session.scalar(
            select(ServiceAccount).where(ServiceAccount.name == name)
        )
        assert account is not None
        return account.status


def test_reimport_keeps_disabled_account(store: Store, tmp_path: Path) -> None:
    export = tmp_path / "keysteward_systems.yaml"
    export.write_text(NATIVE_ACCOUNT.format(status="active"))
    run_import(store, [export])
    with store.session() as session:
        disable_service_account(session, "svc-crm-sync", actor="cli:test")

    again = run_import(store, [export])

    assert _account_status(store, "svc-crm-sync") == "disabled"
    assert again.counts()["service_accounts_changed"] == 0
    assert any("svc-crm-sync stays disabled" in line for line in again.warnings)


def test_reimport_status_change_applies(store: Store, tmp_path: Path) -> None:
    export = tmp_path / "keysteward_systems.yaml"
    export.write_text(NATIVE_ACCOUNT.format(status="active"))
    run_import(store, [export])
    with store.session() as session:
        disable_service_account(session, "svc-crm-sync", actor="cli:test")
    export.write_text(NATIVE_ACCOUNT.format(status="disabled"))
    run_import(store, [export])
    export.write_text(NATIVE_ACCOUNT.format(status="active"))

    changed = run_import(store, [export])

    assert _account_status(store, "svc-crm-sync") == "active"
    assert changed.counts()["service_accounts_changed"] == 1
    assert changed.service_accounts_changed == [
        {"name": "svc-crm-sync", "fields": ["status"]}
    ]
