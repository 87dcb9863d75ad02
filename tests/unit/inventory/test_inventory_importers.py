"""Each importer on the sample exports, with exact field checks."""

import json
from datetime import UTC, datetime
from pathlib import Path

import pytest

from keysteward.inventory.importers.base import detect_importer, load_file
from keysteward.inventory.records import CredentialRecord, ParsedBatch


def parse(shared_dir: Path, name: str) -> tuple[str, ParsedBatch]:
    loaded = load_file(shared_dir / "formats" / name)
    importer = detect_importer(loaded)
    return importer.format, importer.parse(loaded)


def by_id(batch: ParsedBatch) -> dict[str, CredentialRecord]:
    return {record.source_id: record for record in batch.credentials}


def at(text: str) -> datetime:
    return datetime.fromisoformat(text.replace("Z", "+00:00")).astimezone(UTC)


def test_aws_credential_report_fields(shared_dir: Path) -> None:
    detected, batch = parse(shared_dir, "aws_iam_credential_report.csv")
    assert detected == "aws.credential_report"
    records = by_id(batch)
    arn = "arn:aws:iam::111122223333:user/automation/svc-analytics-etl"
    first = records[f"{arn}#access_key_1"]
    assert first.values["created_at"] == at("2026-10-01T07:30:00+00:00")
    assert first.values["last_used_at"] is None
    assert first.values["status"] == "active"
    assert first.attributes["usage_known"] is True
    assert first.attributes["last_used_region"] is None
    assert first.holder_service_account == "svc-analytics-etl"
    second = records[f"{arn}#access_key_2"]
    assert second.values["last_used_at"] == at("2025-06-30T14:05:00+00:00")
    assert second.attributes["last_used_service"] == "redshift"
    assert batch.complete_scopes == {"account:111122223333"}


def test_aws_report_root_and_sentinels(shared_dir: Path) -> None:
    _, batch = parse(shared_dir, "aws_iam_credential_report.csv")
    records = by_id(batch)
    root = records["arn:aws:iam::111122223333:root#password"]
    assert root.values["privilege"] == "admin"
    assert root.values["last_used_at"] == at("2026-10-01T08:12:44+00:00")
    assert root.values["last_rotated_at"] is None
    assert root.attributes["identity_kind"] == "system"
    old = records["arn:aws:iam::111122223333:user/old-console-user#password"]
    assert old.values["last_used_at"] is None
    assert old.attributes["usage_known"] is False
    assert old.attributes["password_last_used"] == "no_information"
    cert = records["arn:aws:iam::111122223333:user/legacy-webhook-user#cert_1"]
    assert cert.values["kind"] == "certificate"
    assert cert.values["created_at"] == at("2019-07-19T08:05:00+00:00")
    # alice has a password but no keys or certificates.
    alice = [r for r in batch.credentials if r.attributes["user_name"] == "alice.admin"]
    assert [r.values["kind"] for r in alice] == ["password"]
    bob_key = records["arn:aws:iam::111122223333:user/bob.former#access_key_1"]
    assert bob_key.holder_person is not None
    assert bob_key.holder_person.account_id == "bob.former"
    assert len(batch.credentials) == 9


def test_aws_list_access_keys(shared_dir: Path) -> None:
    detected, batch = parse(shared_dir, "aws_iam_list_access_keys.json")
    assert detected == "aws.list_access_keys"
    record = by_id(batch)["AKIAEXAMPLEFAKE00002"]
    assert record.values["created_at"] == at("2025-02-01T11:00:00+00:00")
    assert record.values["status"] == "active"
    assert record.merge_keys == [
        {"user_name": "svc-analytics-etl", "created_at": at("2025-02-01T11:00:00Z")}
    ]
    assert batch.complete_scopes == {"user:svc-analytics-etl"}


def test_aws_last_used_never(shared_dir: Path) -> None:
    detected, batch = parse(
        shared_dir, "aws_iam_get_access_key_last_used__never_used.json"
    )
    assert detected == "aws.access_key_last_used"
    (patch,) = batch.patches
    assert patch.values == {"last_used_at": None}
    assert patch.match == [{"user_name": "svc-analytics-etl", "last_used_at": None}]
    assert patch.attributes["last_used_region"] is None


def test_gcp_keys(shared_dir: Path) -> None:
    detected, batch = parse(shared_dir, "gcp_service_account_keys_list.json")
    assert detected == "gcp.service_account_keys"
    records = by_id(batch)
    system = records["0a1b2c3d4e5f60718293a4b5c6d7e8f901234567"]
    assert system.attributes["system_managed"] is True
    assert system.values["expires_at"] == at("2026-12-14T03:12:00Z")
    forever = records["1111aaaa2222bbbb3333cccc4444dddd5555eeee"]
    assert forever.values["expires_at"] is None
    assert forever.values["created_at"] == at("2025-01-15T09:00:00Z")
    exposed = records["9999ffff8888eeee7777dddd6666cccc5555bbbb"]
    assert exposed.values["status"] == "inactive"
    assert exposed.attributes["exposed"] is True
    assert exposed.attributes["disabled_reason"] == (
        "SERVICE_ACCOUNT_KEY_DISABLE_REASON_EXPOSED"
    )
    assert records["abcdefabcdefabcdefabcdefabcdefabcdefabcd"].attributes[
        "key_origin"
    ] == ("USER_PROVIDED")
    account = "svc-ai-gateway@example-prod-123456.iam.gserviceaccount.com"
    assert forever.holder_service_account == account
    assert batch.complete_scopes == {f"service_account:{account}"}


def test_gcp_activity(shared_dir: Path) -> None:
    detected, batch = parse(
        shared_dir, "gcp_policy_intelligence_query_activity_sa_keys.json"
    )
    assert detected == "gcp.key_last_authentication"
    patches = {p.match[0]["source_id"]: p for p in batch.patches}
    old = patches["1111aaaa2222bbbb3333cccc4444dddd5555eeee"]
    assert old.values["last_used_at"] == at("2025-04-20T07:00:00Z")
    assert old.attributes == {"usage_known": True}


def test_github_pat_grants(shared_dir: Path) -> None:
    detected, batch = parse(shared_dir, "github_org_pat_grants.json")
    assert detected == "github.personal_access_tokens"
    records = by_id(batch)
    deploy = records["fine_grained_pat:8800042"]
    assert deploy.values["name"] == "deploy-from-laptop"
    assert deploy.values["privilege"] == "write"
    assert deploy.values["expires_at"] is None
    assert deploy.values["scopes"] == [
        "organization:members:read",
        "repository:contents:write",
        "repository:metadata:read",
        "repository:workflows:write",
    ]
    assert deploy.attributes["repository_selection"] == "all"
    assert deploy.owner is not None
    assert deploy.owner.account_id == "bob-former-example"
    assert records["fine_grained_pat:8800077"].values["status"] == "expired"
    assert records["fine_grained_pat:8800091"].values["privilege"] == "admin"
    assert batch.complete_scopes == {"org:example-widgets:grants"}


def test_github_pat_requests(shared_dir: Path) -> None:
    _, batch = parse(shared_dir, "github_org_pat_requests.json")
    (record,) = batch.credentials
    assert record.source_id == "fine_grained_pat:8800101"
    assert record.values["status"] == "inactive"
    assert record.values["created_at"] == at("2026-12-01T09:14:02Z")
    assert record.attributes["access_request"]["id"] == 25381


def test_github_credential_authorizations(shared_dir: Path) -> None:
    detected, batch = parse(shared_dir, "github_org_credential_authorizations.json")
    assert detected == "github.credential_authorizations"
    records = by_id(batch)
    classic = records["credential_authorization:410001"]
    assert classic.values["kind"] == "personal_access_token"
    assert classic.values["privilege"] == "admin"
    assert classic.values["secret_hint"] == "fake0042"
    assert classic.values["name"] == "ci-deploy (temporary)"
    ssh = records["credential_authorization:410002"]
    assert ssh.values["kind"] == "ssh_key"
    assert ssh.values["last_used_at"] is None
    assert ssh.attributes["public_key_fingerprint"].startswith("SHA256:")
    assert records["credential_authorization:410003"].values["privilege"] == "write"


def test_openai_admin_keys(shared_dir: Path) -> None:
    detected, batch = parse(shared_dir, "openai_admin_api_keys_list.json")
    assert detected == "openai.admin_api_keys"
    bob = by_id(batch)["key_FAKEadmin0002"]
    assert bob.values["privilege"] == "admin"
    assert bob.values["last_used_at"] is None
    assert bob.values["created_at"] == datetime.fromtimestamp(1740000000, UTC)
    assert bob.values["secret_hint"] == "fak2"
    assert bob.owner is not None
    assert bob.owner.account_id == "user_FAKEbob"


def test_openai_project_keys(shared_dir: Path) -> None:
    detected, batch = parse(shared_dir, "openai_project_api_keys_list.json")
    assert detected == "openai.project_api_keys"
    records = by_id(batch)
    gateway = records["key_FAKEproj0001"]
    assert gateway.holder_service_account == "ai-gateway"
    assert gateway.values["expires_at"] == datetime.fromtimestamp(1791536000, UTC)
    laptop = records["key_FAKEproj0002"]
    assert laptop.attributes["owner_project_access"] == "inactive"
    assert laptop.owner is not None
    assert laptop.owner.email == "bob.former@example.com"
    assert "expires_at" in laptop.values
    assert laptop.values["expires_at"] is None


def test_anthropic_keys(shared_dir: Path) -> None:
    detected, batch = parse(shared_dir, "anthropic_admin_api_keys_list.json")
    assert detected == "anthropic.api_keys"
    records = by_id(batch)
    first = records["apikey_01FAKEFAKEFAKEFAKEFAKE0001"]
    assert first.values["created_at"] == at("2025-04-01T09:00:00Z")
    assert first.values["secret_hint"] == "E001"
    assert first.attributes["usage_known"] is False
    legacy = records["apikey_01FAKEFAKEFAKEFAKEFAKE0002"]
    assert legacy.created_by is None
    assert legacy.values["status"] == "inactive"
    assert legacy.values["scopes"] == ["workspace:default"]
    expiring = records["apikey_01FAKEFAKEFAKEFAKEFAKE0003"]
    assert expiring.values["expires_at"] == at("2026-12-31T00:00:00Z")


def test_okta_tokens(shared_dir: Path) -> None:
    detected, batch = parse(shared_dir, "okta_api_tokens_list.json")
    assert detected == "okta.api_tokens"
    token = by_id(batch)["00Tfake0000000000001"]
    assert token.values["privilege"] == "admin"
    assert token.attributes["network_connection"] == "ANYWHERE"
    assert token.attributes["estimated_last_used_at"] == "2026-12-02T03:15:00+00:00"
    assert token.attributes["usage_known"] is False
    assert token.owner is not None
    assert token.owner.account_id == "00ufake00000bobformer"
    assert batch.complete_scopes == {"tenant:example.okta.com"}


def test_stripe_drops_token(shared_dir: Path) -> None:
    loaded = load_file(shared_dir / "formats" / "stripe_v2_iam_api_keys_list.json")
    importer = detect_importer(loaded)
    batch = importer.parse(loaded)
    placeholder = "REDACTED-FAKE-TESTMODE-TOKEN-IMPORTER-MUST-DROP"
    assert placeholder not in repr(batch)
    assert placeholder not in repr(loaded.document)
    records = by_id(batch)
    assert records["mk_FAKE000000000001"].values["privilege"] == "write"
    assert records["mk_FAKE000000000001"].values["secret_hint"] == "FAK1"
    assert records["mk_FAKE000000000002"].values["privilege"] == "admin"
    assert records["mk_FAKE000000000002"].attributes["managed_by"] == "application"


def test_slack_approved_apps(shared_dir: Path) -> None:
    detected, batch = parse(shared_dir, "slack_admin_apps_approved_list.json")
    assert detected == "slack.approved_apps"
    app = by_id(batch)["app:A0FAKE00001"]
    assert app.values["scopes"] == ["chat:write", "channels:history"]
    assert app.attributes["sensitive_scopes"] == ["channels:history"]
    assert app.values["created_at"] == datetime.fromtimestamp(1735689600, UTC)
    assert app.owner is not None
    assert app.owner.account_id == "U0FAKEBOB"


def test_slack_webhooks_from_logs(shared_dir: Path) -> None:
    detected, batch = parse(shared_dir, "slack_team_integration_logs.json")
    assert detected == "slack.integration_logs"
    records = by_id(batch)
    assert set(records) == {"webhook:1000000001", "webhook:1000000003"}
    sales = records["webhook:1000000001"]
    assert sales.values["kind"] == "webhook_url"
    assert sales.values["status"] == "active"
    assert sales.attributes["embedded_secret"] is True
    assert records["webhook:1000000003"].values["status"] == "inactive"
    assert batch.complete_scopes == set()


def test_google_tokens_and_activity(shared_dir: Path) -> None:
    detected, batch = parse(shared_dir, "google_workspace_directory_tokens_list.json")
    assert detected == "google_workspace.directory_tokens"
    grant = by_id(batch)[
        "100000000000000000002:123456789012-fakeclient.apps.googleusercontent.com"
    ]
    assert grant.values["scopes"][0] == "https://mail.google.com/"
    assert grant.values["privilege"] == "write"
    detected, activity = parse(
        shared_dir, "google_workspace_reports_token_activity.json"
    )
    assert detected == "google_workspace.token_activity"
    uses = [p for p in activity.patches if "last_used_at" in p.values]
    assert len(uses) == 1
    assert uses[0].values["last_used_at"] == at("2026-12-03T08:15:30.123Z")
    revokes = [p for p in activity.patches if "status" in p.values]
    assert revokes[0].values["status"] == "revoked"
    emails = {link[0].email for link in activity.person_links}
    assert "bob.former@example.com" in emails


def test_sheet_sample(shared_dir: Path) -> None:
    detected, batch = parse(shared_dir, "credential_inventory_spreadsheet.csv")
    assert detected == "sheet.credentials"
    records = by_id(batch)
    first = records["CRED-0001"]
    assert first.system == "aws"
    assert first.values["scopes"] == [
        "s3:GetObject",
        "s3:PutObject on example-crm-exports",
    ]
    assert first.values["last_rotated_at"] == at("2024-01-10T00:00:00Z")
    assert first.attributes["rotation_interval_days"] == "90"
    assert first.attributes["stored_in"] == "vault:kv/prod/aws/svc-crm-sync"
    assert first.attributes["used_by"] == ["crm-sync (cron)"]
    assert first.owner is not None
    assert first.owner.email == "carol.ops@example.com"
    hubspot = records["CRED-0004"]
    assert hubspot.system == "hubspot"
    assert hubspot.values["last_rotated_at"] is None
    assert hubspot.attributes["usage_known"] is False
    assert records["CRED-0005"].owner is None
    assert records["CRED-0003"].attributes["notes"] == 'created by Bob, "temporary"'
    assert records["CRED-0003"].holder_person is not None
    assert records["CRED-0007"].values["kind"] == "personal_access_token"


@pytest.mark.parametrize(
    "name",
    [
        "hubspot_private_apps_daily_usage.json",
        "vanta_access_file.csv",
    ],
)
def test_unsupported_samples_not_detected(shared_dir: Path, name: str) -> None:
    from keysteward.inventory.errors import FormatNotDetectedError

    loaded = load_file(shared_dir / "formats" / name)
    with pytest.raises(FormatNotDetectedError, match="pass --source"):
        detect_importer(loaded)


def test_access_analyzer_findings(shared_dir: Path) -> None:
    detected, batch = parse(shared_dir, "aws_access_analyzer_list_findings_v2.json")
    assert detected == "aws.access_analyzer_findings"
    (patch,) = batch.patches
    assert patch.match_all is True
    assert patch.match == [
        {
            "user_arn": "arn:aws:iam::111122223333:user/automation/svc-analytics-etl",
            "kind": "access_key",
        }
    ]
    assert patch.attributes["access_analyzer"]["type"] == "UnusedIAMUserAccessKey"
    assert batch.warnings == [
        "aws_access_analyzer_list_findings_v2.json: skipped 2 finding(s) about IAM "
        "roles, which hold no credential in the inventory"
    ]


def test_access_analyzer_role_finding_skipped(shared_dir: Path) -> None:
    detected, batch = parse(shared_dir, "aws_access_analyzer_get_finding_v2.json")
    assert detected == "aws.access_analyzer_findings"
    assert batch.patches == []
    assert len(batch.warnings) == 1


def test_access_analyzer_user_details(tmp_path: Path) -> None:
    arn = "arn:aws:iam::111122223333:user/bo"
    findings = {
        "findings": [
            {
                "id": "f-1",
                "resource": arn,
                "resourceType": "AWS::IAM::User",
                "status": "ACTIVE",
                "findingType": "UnusedPermission",
                "findingDetails": [
                    {
                        "unusedPermissionDetails": {
                            "serviceNamespace": "s3",
                            "actions": [
                                {"action": "s3:PutObject"},
                                {"action": "s3:DeleteObject"},
                            ],
                        }
                    }
                ],
            },
            {
                "id": "f-2",
                "resource": arn,
                "resourceType": "AWS::IAM::User",
                "status": "ACTIVE",
                "findingType": "UnusedIAMUserPassword",
            },
            {
                "id": "f-3",
                "resource": arn,
                "resourceType": "AWS::IAM::User",
                "status": "ARCHIVED",
                "findingType": "UnusedIAMUserAccessKey",
            },
        ]
    }
    path = tmp_path / "findings.json"
    path.write_text(json.dumps(findings))
    loaded = load_file(path)
    batch = detect_importer(loaded).parse(loaded)
    permission, password = batch.patches
    assert permission.attributes["access_analyzer"]["unused_actions"] == [
        "s3:DeleteObject",
        "s3:PutObject",
    ]
    assert permission.match_all is True
    assert password.match == [{"source_id": f"{arn}#password"}]
    assert password.match_all is False
