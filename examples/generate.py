# ruff: noqa: E501, S311
# Long lines are Markdown table rows and fixture literals. The random numbers
# only make up example data, so a non-cryptographic generator is intended.
"""Generate the example organisation: export files of a made-up company.

Example Widgets has 40 people (8 of them departed), 15 systems and about
200 credentials spread over the export formats keysteward reads. Every
name, id, address and hint is invented (example.com addresses, ids marked
EXAMPLE or fake), and no file contains a secret. "Now" is 2026-12-04.

Most credentials are healthy. The problems listed in ``PLANTED`` are placed
on purpose and written to planted.json with the severity the audit should
give them at least.

Run from the repository root to rewrite the files in examples/ (or pass
another folder to write there):

    .venv/bin/python examples/generate.py [FOLDER]
"""

import csv
import hashlib
import io
import json
import random
import sys
import unicodedata
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any

import yaml
from openpyxl import Workbook

OUT = Path(__file__).resolve().parent
NOW = datetime(2026, 12, 4, tzinfo=UTC)
SEED = 20261204
DOMAIN = "example.com"
AWS_ACCOUNT = "210987654321"
GCP_PROJECT = "widgets-prod-4821"
GITHUB_ORG = "example-widgets"
OKTA_HOST = "example-widgets.okta.com"

rng = random.Random(SEED)
PLANTED: list[dict[str, str]] = []


def plant(source: str, source_id: str, rule: str, severity: str, why: str) -> None:
    PLANTED.append(
        {
            "source": source,
            "source_id": source_id,
            "rule": rule,
            "severity": severity,
            "why": why,
        }
    )


def ago(days: float, hours: int = 0) -> datetime:
    return NOW - timedelta(days=days, hours=hours)


def ahead(days: float) -> datetime:
    return NOW + timedelta(days=days)


def iso_z(moment: datetime) -> str:
    return moment.strftime("%Y-%m-%dT%H:%M:%SZ")


def iso_offset(moment: datetime) -> str:
    return moment.strftime("%Y-%m-%dT%H:%M:%S+00:00")


def iso_millis(moment: datetime) -> str:
    return moment.strftime("%Y-%m-%dT%H:%M:%S.000Z")


def unix(moment: datetime) -> int:
    return int(moment.timestamp())


def fake_hex(length: int) -> str:
    return "".join(rng.choice("0123456789abcdef") for _ in range(length))


def fake_upper(length: int) -> str:
    return "".join(
        rng.choice("ABCDEFGHJKLMNPQRSTUVWXYZ23456789") for _ in range(length)
    )


def healthy_age() -> float:
    return rng.randint(12, 75)


def recent_use() -> datetime:
    return ago(rng.randint(0, 3), rng.randint(1, 20))


# People ------------------------------------------------------------------

# (first, last, department, title, departed_on)
STAFF = [
    ("Alice", "Admin", "IT", "Head of IT", None),
    ("Bob", "Former", "Engineering", "Senior Engineer", date(2026, 8, 15)),
    ("Carol", "Ops", "Platform", "Platform Lead", None),
    ("Dave", "Dev", "Data", "Data Engineer", None),
    ("Maya", "Singh", "Platform", "Site Reliability Engineer", None),
    ("Omar", "Haddad", "Platform", "Platform Engineer", None),
    ("Priya", "Raman", "Engineering", "VP Engineering", None),
    ("Lucas", "Ferreira", "Engineering", "Backend Engineer", None),
    ("Sofia", "Rossi", "Engineering", "Frontend Engineer", None),
    ("Chen", "Wei", "Data", "Data Scientist", None),
    ("Nora", "Berg", "Data", "Analytics Lead", None),
    ("Tomás", "García", "Support", "Support Lead", None),
    ("Hana", "Kobayashi", "Support", "Support Engineer", None),
    ("Ethan", "Clarke", "Sales", "Head of Sales", None),
    ("Amara", "Nwosu", "Sales Ops", "Sales Operations Manager", None),
    ("Felix", "Braun", "Finance", "Finance Manager", None),
    ("Julia", "Nowak", "Finance", "Finance Engineer", None),
    ("Ravi", "Patel", "Marketing", "Marketing Ops", None),
    ("Elena", "Popescu", "Marketing", "Head of Marketing", None),
    ("Samuel", "Okoro", "Engineering", "Engineering Manager", None),
    ("Yuki", "Sato", "Engineering", "Backend Engineer", None),
    ("Isabel", "Moreno", "People", "People Partner", None),
    ("Noah", "Fischer", "Engineering", "Security Engineer", None),
    ("Leila", "Karimi", "Product", "Product Manager", None),
    ("Mateo", "Silva", "Product", "Designer", None),
    ("Zara", "Ahmed", "Data", "ML Engineer", None),
    ("Oscar", "Lund", "Support", "Support Engineer", None),
    ("Anya", "Volkova", "Finance", "Controller", None),
    ("Daniel", "Kim", "Engineering", "Staff Engineer", None),
    ("Freya", "Hall", "Sales", "Account Executive", None),
    ("Gabriel", "Costa", "Platform", "Platform Engineer", None),
    ("Mira", "Shah", "Executive", "CEO", None),
    ("Ada", "Mensah", "Engineering", "Backend Engineer", None),
    # Departed, besides Bob.
    ("Frank", "Moreau", "Platform", "Platform Engineer", date(2026, 5, 31)),
    ("Grace", "Lindqvist", "Finance", "Finance Analyst", date(2026, 10, 30)),
    ("Hugo", "Tanaka", "Engineering", "Backend Engineer", date(2026, 3, 15)),
    ("Ines", "Okafor", "Support", "Support Engineer", date(2026, 11, 20)),
    ("Jonas", "Weber", "Engineering", "Release Engineer", date(2026, 7, 1)),
    ("Kira", "Novak", "Platform", "SRE", date(2026, 9, 12)),
    ("Liam", "OConnor", "Sales Ops", "Sales Ops Analyst", date(2026, 6, 30)),
]
MANAGERS = {
    "IT": "mira.shah",
    "Engineering": "priya.raman",
    "Platform": "carol.ops",
    "Data": "nora.berg",
    "Support": "tomas.garcia",
    "Sales": "ethan.clarke",
    "Sales Ops": "ethan.clarke",
    "Finance": "felix.braun",
    "Marketing": "elena.popescu",
    "People": "mira.shah",
    "Product": "priya.raman",
    "Executive": None,
}
# People who sign in to the AWS console with their own IAM user.
AWS_HUMANS = ("alice.admin", "carol.ops", "dave.dev", "maya.singh", "omar.haddad")


def ascii_only(text: str) -> str:
    decomposed = unicodedata.normalize("NFKD", text)
    return decomposed.encode("ascii", "ignore").decode()


class Person:
    def __init__(self, index: int, row: tuple[str, str, str, str, date | None]) -> None:
        first, last, self.department, self.title, self.departed_on = row
        self.name = f"{first} {last}"
        self.handle = ascii_only(f"{first}.{last}").lower()
        ascii_first = ascii_only(first)
        last = ascii_only(last)
        self.email = f"{self.handle}@{DOMAIN}"
        self.github = f"{ascii_first}-{last}-example".lower()
        self.slack = f"U0EX{index:04d}{fake_upper(3)}"
        self.okta = f"00uexample{index:04d}{fake_hex(6)}"
        self.openai = f"user_EXAMPLE{index:04d}"
        self.anthropic = f"user_01EXAMPLE{index:04d}{fake_upper(8)}"
        self.google = f"1000000000000000{index:05d}"
        self.employee_id = f"E{1000 + index}"
        self.started = date(2019, 1, 7) + timedelta(days=rng.randint(0, 2300))

    @property
    def departed(self) -> bool:
        return self.departed_on is not None


PEOPLE = [Person(i, row) for i, row in enumerate(STAFF, start=1)]
P = {person.handle: person for person in PEOPLE}
ACTIVE = [person for person in PEOPLE if not person.departed]
ENGINEERS = [
    p for p in ACTIVE if p.department in {"Engineering", "Platform", "Data", "IT"}
]


def write_roster() -> None:
    headers = [
        "Employee ID",
        "Full Name",
        "Work Email",
        "Department",
        "Job Title",
        "Employment Status",
        "Start Date",
        "Termination Date",
        "Manager Email",
        "GitHub Username",
        "Slack User ID",
        "Okta User ID",
        "AWS IAM User",
        "OpenAI User ID",
        "Anthropic User ID",
        "Google Profile ID",
    ]
    rows = []
    for person in PEOPLE:
        manager = MANAGERS[person.department]
        if manager == person.handle:
            manager = "mira.shah" if person.handle != "mira.shah" else None
        rows.append(
            [
                person.employee_id,
                person.name,
                person.email,
                person.department,
                person.title,
                "Terminated" if person.departed else "Active",
                person.started.isoformat(),
                person.departed_on.strftime("%d/%m/%Y") if person.departed_on else "",
                f"{manager}@{DOMAIN}" if manager else "",
                person.github,
                person.slack,
                person.okta,
                person.handle
                if person.handle in AWS_HUMANS + ("bob.former", "kira.novak")
                else "",
                person.openai,
                person.anthropic,
                person.google,
            ]
        )
    write_csv("people_roster.csv", headers, rows)


def write_csv(
    name: str, headers: list[str], rows: list[list[Any]], bom: bool = False
) -> None:
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\r\n")
    writer.writerow(headers)
    writer.writerows(rows)
    data = buffer.getvalue()
    (OUT / name).write_text(
        ("\ufeff" if bom else "") + data, encoding="utf-8", newline=""
    )


def write_json(name: str, document: Any) -> None:
    text = json.dumps(document, indent=2, ensure_ascii=False) + "\n"
    (OUT / name).write_text(text, encoding="utf-8")


# Systems and service accounts (native file) ------------------------------

SYSTEMS = [
    ("aws", "cloud", "carol.ops", 90),
    ("gcp", "cloud", "maya.singh", 90),
    ("github", "code_hosting", "priya.raman", 90),
    ("openai", "ai_model_api", "dave.dev", 90),
    ("anthropic", "ai_model_api", "dave.dev", 90),
    ("slack", "chat", "alice.admin", 180),
    ("okta", "identity", "alice.admin", 90),
    ("google_workspace", "productivity", "alice.admin", None),
    ("stripe", "payments", "felix.braun", 180),
    ("hubspot", "crm", "amara.nwosu", 180),
    ("zapier", "workflow", "amara.nwosu", 180),
    ("notion", "productivity", "leila.karimi", 180),
    ("sendgrid", "email", "ravi.patel", 180),
    ("datadog", "analytics", "maya.singh", 90),
    ("mixpanel", "analytics", "elena.popescu", None),
]
GCP_ACCOUNTS = {
    "ai-gateway": "dave.dev",
    "analytics-etl": "nora.berg",
    "backup-writer": "maya.singh",
}
# (name, owner, purpose, status)
SERVICE_ACCOUNTS = [
    ("svc-crm-sync", "carol.ops", "Nightly CRM export to S3 and HubSpot", "active"),
    ("svc-analytics-etl", "dave.dev", "Warehouse loads from S3 and Redshift", "active"),
    (
        "svc-ai-gateway",
        "dave.dev",
        "LLM gateway for the support and product bots",
        "active",
    ),
    (
        "svc-billing",
        "julia.nowak",
        "Invoice sync between Stripe and the ledger",
        "active",
    ),
    ("svc-deploy", "priya.raman", "CI deploys to the production account", "active"),
    ("svc-backup", "frank.moreau", "Nightly database snapshots to S3", "active"),
    ("svc-support-bot", "tomas.garcia", "Support triage bot", "active"),
    (
        "svc-legacy-reports",
        "carol.ops",
        "Old weekly PDF reports (switched off)",
        "disabled",
    ),
    ("svc-data-export", "nora.berg", "Customer data exports on request", "active"),
    ("svc-monitoring", "maya.singh", "Metrics and uptime checks", "active"),
]


def gcp_email(account: str) -> str:
    return f"{account}@{GCP_PROJECT}.iam.gserviceaccount.com"


def fingerprint(label: str) -> str:
    # A stand-in for keysteward's salted fingerprint: equal labels give equal
    # values, which is all the duplicate check compares.
    return hashlib.sha256(f"example-widgets:{label}".encode()).hexdigest()


def native_credential(
    source_id: str,
    name: str,
    system: str,
    owner: str,
    privilege: str,
    scopes: list[str],
    attributes: dict[str, Any],
    fingerprint_label: str,
    holder: str | None = None,
) -> dict[str, Any]:
    created = ago(healthy_age())
    return {
        "source": "native",
        "source_id": source_id,
        "name": name,
        "kind": "api_key",
        "system": system,
        "scopes": scopes,
        "privilege": privilege,
        "status": "active",
        "created_by": P[owner].email,
        "owner": P[owner].email,
        "holder_person": None,
        "holder_service_account": holder,
        "fingerprint": fingerprint(fingerprint_label),
        "secret_hint": fake_upper(4),
        "created_at": iso_offset(created),
        "last_rotated_at": None,
        "last_used_at": iso_offset(recent_use()),
        "expires_at": None,
        "attributes": {"usage_known": True, **attributes},
    }


def write_native() -> None:
    systems = []
    for name, category, owner, rotation in SYSTEMS:
        attributes: dict[str, Any] = {}
        status = "active"
        if name == "mixpanel":
            status = "decommissioned"
            attributes = {"decommissioned_on": "2026-09-30", "replaced_by": "datadog"}
        systems.append(
            {
                "name": name,
                "category": category,
                "status": status,
                "owner": P[owner].email,
                "rotation_max_age_days": rotation,
                "attributes": attributes,
            }
        )
    accounts = [
        {
            "name": name,
            "purpose": purpose,
            "owner": P[owner].email,
            "status": status,
            "attributes": {},
        }
        for name, owner, purpose, status in SERVICE_ACCOUNTS
    ]
    for account, owner in GCP_ACCOUNTS.items():
        accounts.append(
            {
                "name": gcp_email(account),
                "purpose": f"GCP service account {account}",
                "owner": P[owner].email,
                "status": "active",
                "attributes": {"project": GCP_PROJECT},
            }
        )
    credentials = [
        native_credential(
            "datadog-agent-prod",
            "Datadog agent API key (prod)",
            "datadog",
            "maya.singh",
            "write",
            ["metrics:write", "logs:write"],
            {"stored_in": "vault:kv/prod/datadog/agent", "used_by": ["datadog-agent"]},
            "datadog-shared",
            holder="svc-monitoring",
        ),
        native_credential(
            "datadog-ci",
            "Datadog API key in CI",
            "datadog",
            "maya.singh",
            "write",
            ["metrics:write"],
            {"stored_in": "vault:kv/ci/datadog", "used_by": ["ci-pipeline"]},
            "datadog-shared",
            holder="svc-deploy",
        ),
        native_credential(
            "sendgrid-transactional",
            "SendGrid full-access key (transactional mail)",
            "sendgrid",
            "ravi.patel",
            "admin",
            ["mail.send", "api_keys", "templates"],
            {"stored_in": "vault:kv/prod/sendgrid/main", "used_by": ["mailer"]},
            "sendgrid-shared",
            holder="svc-support-bot",
        ),
        native_credential(
            "sendgrid-marketing",
            "SendGrid key of the marketing site",
            "sendgrid",
            "ravi.patel",
            "admin",
            ["mail.send", "api_keys", "templates"],
            {"stored_in": "vault:kv/prod/sendgrid/site", "used_by": ["website"]},
            "sendgrid-shared",
            holder="svc-support-bot",
        ),
        native_credential(
            "datadog-legacy-app",
            "Datadog application key (legacy dashboards)",
            "datadog",
            "maya.singh",
            "read",
            ["dashboards:read"],
            {
                "stored_in": "vault:kv/prod/datadog/app",
                "discovered_in": [
                    {
                        "path": "dashboards/sync.py",
                        "line": 14,
                        "commit": "4f1c2e9",
                        "author": f"hugo.tanaka@{DOMAIN}",
                    }
                ],
            },
            "datadog-legacy",
            holder="svc-monitoring",
        ),
        native_credential(
            "notion-wiki-export",
            "Notion integration for the wiki backup",
            "notion",
            "leila.karimi",
            "read",
            ["pages:read"],
            {"stored_in": "vault:kv/prod/notion/export", "used_by": ["wiki-backup"]},
            "notion-export",
            holder="svc-backup",
        ),
    ]
    # No owner is named, so the holder's owner answers for it, and
    # the owner of svc-backup has left.
    credentials[-1]["owner"] = None
    credentials[-1]["created_by"] = None
    plant(
        "native",
        "notion-wiki-export",
        "owner_departed",
        "high",
        "held by svc-backup, whose owner Frank Moreau left on 2026-05-31",
    )
    plant(
        "native",
        "datadog-agent-prod",
        "duplicate_secret",
        "medium",
        "the same Datadog key is also configured in CI (datadog-ci)",
    )
    plant(
        "native",
        "datadog-ci",
        "duplicate_secret",
        "medium",
        "the same Datadog key as the production agent",
    )
    plant(
        "native",
        "sendgrid-transactional",
        "duplicate_secret",
        "high",
        "one full-access SendGrid key shared by the mailer and the website",
    )
    plant(
        "native",
        "sendgrid-marketing",
        "duplicate_secret",
        "high",
        "the website reuses the mailer's full-access SendGrid key",
    )
    plant(
        "native",
        "datadog-legacy-app",
        "found_outside_vault",
        "high",
        "a copy was committed to dashboards/sync.py in 4f1c2e9",
    )
    document = {
        "keysteward_inventory": 1,
        "people": [],
        "service_accounts": accounts,
        "systems": systems,
        "credentials": credentials,
    }
    (OUT / "keysteward_systems.yaml").write_text(
        "# Systems, service accounts and a few hand-tracked keys, in keysteward's\n"
        "# native format (what `keysteward inventory export` writes).\n"
        + yaml.safe_dump(document, sort_keys=False, allow_unicode=True, width=100),
        encoding="utf-8",
    )


# AWS ----------------------------------------------------------------------

AWS_COLUMNS = [
    "user",
    "arn",
    "user_creation_time",
    "password_enabled",
    "password_last_used",
    "password_last_changed",
    "password_next_rotation",
    "mfa_active",
    "access_key_1_active",
    "access_key_1_last_rotated",
    "access_key_1_last_used_date",
    "access_key_1_last_used_region",
    "access_key_1_last_used_service",
    "access_key_2_active",
    "access_key_2_last_rotated",
    "access_key_2_last_used_date",
    "access_key_2_last_used_region",
    "access_key_2_last_used_service",
    "cert_1_active",
    "cert_1_last_rotated",
    "cert_2_active",
    "cert_2_last_rotated",
]
NA = "N/A"
REGIONS = ("eu-west-1", "us-east-1", "eu-central-1")
SERVICES = ("s3", "dynamodb", "sqs", "lambda", "redshift", "secretsmanager")


def aws_arn(user: str, path: str = "") -> str:
    if user == "<root_account>":
        return f"arn:aws:iam::{AWS_ACCOUNT}:root"
    return f"arn:aws:iam::{AWS_ACCOUNT}:user/{path}{user}"


def aws_key(
    created: datetime | None, used: datetime | None, active: bool = True
) -> list[str]:
    if created is None:
        return ["false", NA, NA, NA, NA]
    if used is None:
        return ["true" if active else "false", iso_offset(created), NA, NA, NA]
    return [
        "true" if active else "false",
        iso_offset(created),
        iso_offset(used),
        rng.choice(REGIONS),
        rng.choice(SERVICES),
    ]


def aws_row(
    user: str,
    created: datetime,
    password: list[str] | None = None,
    key1: list[str] | None = None,
    key2: list[str] | None = None,
    cert1: list[str] | None = None,
    path: str = "",
) -> list[str]:
    no_password = ["false", NA, NA, NA, "false"]
    no_key = aws_key(None, None)
    return [
        user,
        aws_arn(user, path),
        iso_offset(created),
        *(password or no_password),
        *(key1 or no_key),
        *(key2 or no_key),
        *(cert1 or ["false", NA]),
        "false",
        NA,
    ]


def console(
    last_used: datetime | str, changed: datetime | str, mfa: bool = True
) -> list[str]:
    used = last_used if isinstance(last_used, str) else iso_offset(last_used)
    changed_text = changed if isinstance(changed, str) else iso_offset(changed)
    return ["true", used, changed_text, NA, "true" if mfa else "false"]


def aws_id(label: str) -> str:
    digits = int(hashlib.sha256(label.encode()).hexdigest(), 16) % 10**8
    return f"AKIAEXAMPLE{digits:08d}X"[:20]


def write_aws() -> None:
    rows = []
    root = "<root_account>"
    rows.append(
        aws_row(
            root,
            datetime(2021, 3, 2, 9, tzinfo=UTC),
            password=[
                "not_supported",
                iso_offset(ago(40)),
                "not_supported",
                "not_supported",
                "true",
            ],
        )
    )
    plant(
        "aws",
        f"{aws_arn(root)}#password",
        "rotation_overdue",
        "high",
        "root console password: the report cannot show a change since 2021",
    )
    plant(
        "aws",
        f"{aws_arn(root)}#password",
        "no_owner",
        "medium",
        "nobody is recorded as answering for the root account",
    )
    for handle in AWS_HUMANS:
        person = P[handle]
        key = None
        if handle in {"dave.dev", "maya.singh"}:
            key = aws_key(ago(healthy_age()), recent_use())
        rows.append(
            aws_row(
                handle,
                datetime(2022, 5, 10, 12, tzinfo=UTC)
                + timedelta(days=rng.randint(0, 500)),
                password=console(recent_use(), ago(healthy_age())),
                key1=key,
            )
        )
        del person
    bob = aws_arn("bob.former")
    rows.append(
        aws_row(
            "bob.former",
            datetime(2023, 2, 1, 9, 30, tzinfo=UTC),
            password=console(datetime(2026, 8, 10, 17, 45, tzinfo=UTC), ago(70)),
            key1=aws_key(ago(60), ago(2, 5)),
        )
    )
    plant(
        "aws",
        f"{bob}#access_key_1",
        "owner_departed",
        "high",
        "Bob left on 2026-08-15 and his access key was used two days ago",
    )
    plant(
        "aws",
        f"{bob}#password",
        "owner_departed",
        "high",
        "Bob left on 2026-08-15 and his console password is still enabled",
    )
    kira = aws_arn("kira.novak")
    rows.append(
        aws_row(
            "kira.novak",
            datetime(2024, 4, 2, 8, tzinfo=UTC),
            password=console(datetime(2026, 9, 11, 16, tzinfo=UTC), ago(80)),
        )
    )
    plant(
        "aws",
        f"{kira}#password",
        "owner_departed",
        "high",
        "Kira left on 2026-09-12 and her console password is still enabled",
    )
    svc_path = "automation/"
    for name, _, _, _ in SERVICE_ACCOUNTS:
        arn = aws_arn(name, svc_path)
        created = datetime(2024, 1, 10, 10, tzinfo=UTC) + timedelta(
            days=rng.randint(0, 400)
        )
        key1 = aws_key(ago(healthy_age()), recent_use())
        key2 = None
        if name == "svc-crm-sync":
            key1 = aws_key(datetime(2024, 1, 10, 10, tzinfo=UTC), recent_use())
            plant(
                "aws",
                f"{arn}#access_key_1",
                "rotation_overdue",
                "medium",
                "created 2024-01-10 and never rotated",
            )
        elif name == "svc-analytics-etl":
            key1 = aws_key(ago(64, 3), None)
            key2 = aws_key(
                datetime(2025, 2, 1, 11, tzinfo=UTC),
                datetime(2025, 6, 30, 14, 5, tzinfo=UTC),
            )
            plant(
                "aws",
                f"{arn}#access_key_1",
                "never_used",
                "medium",
                "second key made 64 days ago for a rotation that never finished",
            )
            plant("aws", f"{arn}#access_key_2", "unused", "low", "last used 2025-06-30")
            plant(
                "aws",
                f"{arn}#access_key_2",
                "rotation_overdue",
                "medium",
                "created 2025-02-01",
            )
        elif name == "svc-billing":
            key2 = aws_key(ago(5), recent_use())
        elif name == "svc-backup":
            plant(
                "aws",
                f"{arn}#access_key_1",
                "owner_departed",
                "high",
                "svc-backup is owned by Frank Moreau, who left on 2026-05-31",
            )
        elif name == "svc-legacy-reports":
            key1 = aws_key(ago(70), ago(3, 4))
            plant(
                "aws",
                f"{arn}#access_key_1",
                "holder_disabled",
                "medium",
                "svc-legacy-reports is disabled but its key was used 3 days ago",
            )
        rows.append(aws_row(name, created, key1=key1, key2=key2, path=svc_path))
    legacy = aws_arn("legacy-webhook-user")
    rows.append(
        aws_row(
            "legacy-webhook-user",
            datetime(2019, 7, 19, 8, tzinfo=UTC),
            cert1=["true", "2019-07-19T08:05:00+00:00"],
        )
    )
    plant(
        "aws",
        f"{legacy}#cert_1",
        "rotation_overdue",
        "medium",
        "signing certificate uploaded in 2019",
    )
    plant(
        "aws",
        f"{legacy}#cert_1",
        "unknown_access",
        "low",
        "nothing records what the certificate's user may do",
    )
    write_csv("aws_iam_credential_report.csv", AWS_COLUMNS, rows)
    write_aws_listings()


def write_aws_listings() -> None:
    user = "svc-analytics-etl"
    first = aws_id("svc-analytics-etl-1")
    second = aws_id("svc-analytics-etl-2")
    write_json(
        "aws_list_access_keys_svc-analytics-etl.json",
        {
            "AccessKeyMetadata": [
                {
                    "UserName": user,
                    "AccessKeyId": first,
                    "Status": "Active",
                    "CreateDate": iso_offset(ago(64, 3)),
                },
                {
                    "UserName": user,
                    "AccessKeyId": second,
                    "Status": "Active",
                    "CreateDate": "2025-02-01T11:00:00+00:00",
                },
            ]
        },
    )
    write_json(
        f"aws_get_access_key_last_used_{second}.json",
        {
            "UserName": user,
            "AccessKeyLastUsed": {
                "LastUsedDate": "2025-06-30T14:05:00+00:00",
                "ServiceName": "redshift",
                "Region": "eu-west-1",
            },
        },
    )
    write_json(
        f"aws_get_access_key_last_used_{first}.json",
        {"UserName": user, "AccessKeyLastUsed": {"ServiceName": NA, "Region": NA}},
    )


# GCP ----------------------------------------------------------------------


def gcp_key_name(account: str, key_id: str) -> str:
    return f"projects/{GCP_PROJECT}/serviceAccounts/{gcp_email(account)}/keys/{key_id}"


def write_gcp() -> None:
    activity = []
    for account in GCP_ACCOUNTS:
        keys = [
            {
                "keyAlgorithm": "KEY_ALG_RSA_2048",
                "keyOrigin": "GOOGLE_PROVIDED",
                "keyType": "SYSTEM_MANAGED",
                "name": gcp_key_name(account, fake_hex(40)),
                "validAfterTime": iso_z(ago(6)),
                "validBeforeTime": iso_z(ahead(10)),
            }
        ]
        for _ in range(2 if account != "backup-writer" else 1):
            key_id = fake_hex(40)
            created = ago(healthy_age())
            keys.append(
                {
                    "keyAlgorithm": "KEY_ALG_RSA_2048",
                    "keyOrigin": "GOOGLE_PROVIDED",
                    "keyType": "USER_MANAGED",
                    "name": gcp_key_name(account, key_id),
                    "validAfterTime": iso_z(created),
                    "validBeforeTime": iso_z(created + timedelta(days=180)),
                }
            )
            activity.append(gcp_activity(account, key_id, ago(0, rng.randint(2, 30))))
        if account == "ai-gateway":
            old = fake_hex(40)
            keys.append(
                {
                    "keyAlgorithm": "KEY_ALG_RSA_2048",
                    "keyOrigin": "GOOGLE_PROVIDED",
                    "keyType": "USER_MANAGED",
                    "name": gcp_key_name(account, old),
                    "validAfterTime": "2025-01-15T09:00:00Z",
                    "validBeforeTime": "9999-12-31T23:59:59Z",
                }
            )
            activity.append(
                gcp_activity(account, old, datetime(2025, 4, 20, 7, tzinfo=UTC))
            )
            plant("gcp", old, "no_expiry", "low", "user-managed key that never expires")
            plant("gcp", old, "rotation_overdue", "medium", "created 2025-01-15")
            plant("gcp", old, "unused", "low", "last authenticated 2025-04-20")
            plant(
                "gcp",
                old,
                "unknown_access",
                "low",
                "the key listing does not show the service account's roles",
            )
            exposed = fake_hex(40)
            keys.append(
                {
                    "disableReason": "SERVICE_ACCOUNT_KEY_DISABLE_REASON_EXPOSED",
                    "disabled": True,
                    "extendedStatus": [
                        {
                            "key": "SERVICE_ACCOUNT_KEY_EXTENDED_STATUS_KEY_EXPOSED",
                            "value": f"https://git.{DOMAIN}/widgets/leaky/blob/main/key.json",
                        }
                    ],
                    "keyAlgorithm": "KEY_ALG_RSA_2048",
                    "keyOrigin": "GOOGLE_PROVIDED",
                    "keyType": "USER_MANAGED",
                    "name": gcp_key_name(account, exposed),
                    "validAfterTime": iso_z(ago(120)),
                    "validBeforeTime": iso_z(ago(120) + timedelta(days=180)),
                }
            )
        write_json(f"gcp_keys_{account}.json", keys)
    write_json("gcp_key_last_authentication.json", activity)


def gcp_activity(account: str, key_id: str, when: datetime) -> dict[str, Any]:
    resource = f"//iam.googleapis.com/{gcp_key_name(account, key_id)}"
    stamp = iso_z(when.replace(minute=0, second=0))
    return {
        "activity": {
            "lastAuthenticatedTime": stamp,
            "serviceAccountKey": {
                "fullResourceName": resource,
                "projectNumber": "482100000001",
                "serviceAccountId": f"1098765{rng.randint(10**13, 10**14 - 1)}",
            },
        },
        "activityType": "serviceAccountKeyLastAuthentication",
        "fullResourceName": resource,
        "observationPeriod": {"endTime": stamp, "startTime": stamp},
    }


# GitHub -------------------------------------------------------------------


def github_user(person: Person, number: int) -> dict[str, Any]:
    login = person.github
    return {
        "login": login,
        "id": 7100000 + number,
        "node_id": f"U_EXAMPLE{7100000 + number}",
        "avatar_url": f"https://avatars.githubusercontent.com/u/{7100000 + number}?v=4",
        "gravatar_id": "",
        "url": f"https://api.github.com/users/{login}",
        "html_url": f"https://github.com/{login}",
        "type": "User",
        "site_admin": False,
    }


def pat(
    token_id: int,
    person: Person,
    name: str,
    permissions: dict[str, dict[str, str]],
    granted: datetime,
    expires: datetime | None,
    last_used: datetime | None,
    selection: str = "subset",
    expired: bool = False,
) -> dict[str, Any]:
    return {
        "id": token_id,
        "owner": github_user(person, PEOPLE.index(person)),
        "repository_selection": selection,
        "repositories_url": (
            f"https://api.github.com/orgs/{GITHUB_ORG}/personal-access-tokens/"
            f"{token_id}/repositories"
        ),
        "permissions": {
            "organization": permissions.get("organization", {}),
            "repository": permissions.get("repository", {}),
            "other": {},
        },
        "access_granted_at": iso_z(granted),
        "token_id": token_id,
        "token_name": name,
        "token_expired": expired,
        "token_expires_at": iso_z(expires) if expires else None,
        "token_last_used_at": iso_z(last_used) if last_used else None,
    }


HEALTHY_PATS = [
    ("release-notes-reader", {"repository": {"contents": "read", "metadata": "read"}}),
    ("docs-site-publisher", {"repository": {"pages": "write", "metadata": "read"}}),
    ("issue-triage-helper", {"repository": {"issues": "write", "metadata": "read"}}),
    ("dependency-report", {"repository": {"contents": "read", "metadata": "read"}}),
    ("ci-status-checker", {"repository": {"statuses": "read", "metadata": "read"}}),
    ("changelog-writer", {"repository": {"contents": "write", "metadata": "read"}}),
    ("pr-labeler", {"repository": {"pull_requests": "write", "metadata": "read"}}),
    ("wiki-sync", {"repository": {"contents": "read", "metadata": "read"}}),
    ("security-alerts-reader", {"repository": {"security_events": "read"}}),
    ("local-dev-clone", {"repository": {"contents": "read", "metadata": "read"}}),
    ("api-schema-export", {"repository": {"contents": "read", "metadata": "read"}}),
    ("flaky-test-reporter", {"repository": {"issues": "write", "metadata": "read"}}),
    ("terraform-plan-reader", {"repository": {"contents": "read", "metadata": "read"}}),
    ("benchmark-uploader", {"repository": {"contents": "write", "metadata": "read"}}),
    ("codeowners-check", {"repository": {"contents": "read", "metadata": "read"}}),
    ("ml-model-registry", {"repository": {"contents": "read", "metadata": "read"}}),
]


def write_github() -> None:
    grants = []
    for number, (name, permissions) in enumerate(HEALTHY_PATS):
        person = ENGINEERS[number % len(ENGINEERS)]
        granted = ago(healthy_age())
        grants.append(
            pat(
                8900100 + number,
                person,
                name,
                permissions,
                granted,
                granted + timedelta(days=rng.choice((90, 180, 365))),
                recent_use(),
            )
        )
    grants.append(
        pat(
            8900042,
            P["bob.former"],
            "deploy-from-laptop",
            {
                "organization": {"members": "read"},
                "repository": {
                    "contents": "write",
                    "metadata": "read",
                    "workflows": "write",
                },
            },
            datetime(2025, 6, 2, 10, tzinfo=UTC),
            None,
            ago(2, 6),
            selection="all",
        )
    )
    plant(
        "github",
        "fine_grained_pat:8900042",
        "owner_departed",
        "high",
        "Bob left on 2026-08-15; his all-repository token was used two days ago",
    )
    plant(
        "github",
        "fine_grained_pat:8900042",
        "no_expiry",
        "medium",
        "write access to every repository with no expiry date",
    )
    grants.append(
        pat(
            8900091,
            P["alice.admin"],
            "one-off-repo-migration",
            {
                "organization": {"administration": "write"},
                "repository": {"administration": "write", "metadata": "read"},
            },
            datetime(2026, 2, 20, 12, 30, tzinfo=UTC),
            ahead(78),
            datetime(2026, 3, 1, 10, tzinfo=UTC),
        )
    )
    plant(
        "github",
        "fine_grained_pat:8900091",
        "unused",
        "high",
        "organization admin token for a one-off migration, idle since 2026-03-01",
    )
    grants.append(
        pat(
            8900077,
            P["jonas.weber"],
            "release-tagger",
            {"repository": {"contents": "write", "metadata": "read"}},
            ago(150),
            ahead(30),
            ago(1, 2),
        )
    )
    plant(
        "github",
        "fine_grained_pat:8900077",
        "owner_departed",
        "high",
        "Jonas left on 2026-07-01 and the token still tags releases",
    )
    grants.append(
        pat(
            8900060,
            P["chen.wei"],
            "analytics-report-reader",
            {"repository": {"contents": "read", "metadata": "read"}},
            ago(300),
            ago(210),
            ago(211),
            expired=True,
        )
    )
    write_json("github_org_pat_grants.json", grants)
    requests = [
        {
            **pat(
                8900201,
                P["sofia.rossi"],
                "storybook-deploy",
                {"repository": {"pages": "write", "metadata": "read"}},
                ago(1),
                ahead(90),
                None,
            ),
            "reason": "Publish the component library preview",
        },
        {
            **pat(
                8900202,
                P["yuki.sato"],
                "load-test-fixtures",
                {"repository": {"contents": "read", "metadata": "read"}},
                ago(0, 6),
                ahead(30),
                None,
            ),
            "reason": "Read fixtures for the nightly load test",
        },
    ]
    for request in requests:
        request["created_at"] = request.pop("access_granted_at")
    write_json("github_org_pat_requests.json", requests)
    write_github_authorizations()


def write_github_authorizations() -> None:
    entries = []
    for number, person in enumerate(ENGINEERS[:5]):
        entries.append(
            {
                "login": person.github,
                "credential_id": 420100 + number,
                "credential_type": "SSH key",
                "credential_authorized_at": iso_z(ago(healthy_age())),
                "credential_accessed_at": iso_z(recent_use()),
                "fingerprint": f"SHA256:EXAMPLE{fake_upper(30)}",
                "authorized_credential_id": 99100000 + number,
                "authorized_credential_title": f"{person.handle} laptop",
            }
        )
    entries.append(
        {
            "login": P["daniel.kim"].github,
            "credential_id": 420150,
            "credential_type": "personal access token",
            "token_last_eight": "exmp0150",
            "credential_authorized_at": iso_z(ago(30)),
            "credential_accessed_at": iso_z(ago(1, 3)),
            "scopes": ["read:org", "repo"],
            "authorized_credential_id": 99100150,
            "authorized_credential_note": "release scripts",
            "authorized_credential_expires_at": iso_z(ahead(60)),
        }
    )
    entries.append(
        {
            "login": P["bob.former"].github,
            "credential_id": 420001,
            "credential_type": "personal access token",
            "token_last_eight": "exmp0042",
            "credential_authorized_at": "2024-11-05T09:00:00Z",
            "credential_accessed_at": iso_z(ago(2, 1)),
            "scopes": ["repo", "workflow", "admin:org", "read:user"],
            "authorized_credential_id": 99000011,
            "authorized_credential_note": "ci-deploy (temporary)",
            "authorized_credential_expires_at": None,
        }
    )
    plant(
        "github",
        "credential_authorization:420001",
        "owner_departed",
        "critical",
        "Bob's classic token with admin:org is still authorized and in use",
    )
    entries.append(
        {
            "login": P["carol.ops"].github,
            "credential_id": 420002,
            "credential_type": "SSH key",
            "credential_authorized_at": "2025-03-14T15:20:00Z",
            "credential_accessed_at": None,
            "fingerprint": f"SHA256:EXAMPLE{fake_upper(30)}",
            "authorized_credential_id": 99000012,
            "authorized_credential_title": "carol old laptop",
        }
    )
    plant(
        "github",
        "credential_authorization:420002",
        "never_used",
        "medium",
        "SSH key of an old laptop, authorized 2025-03-14 and never used",
    )
    plant(
        "github",
        "credential_authorization:420002",
        "unknown_access",
        "low",
        "an SSH key carries its user's access, which the export does not list",
    )
    write_json("github_org_credential_authorizations.json", entries)


# OpenAI and Anthropic -----------------------------------------------------


def openai_user(person: Person) -> dict[str, Any]:
    return {
        "type": "user",
        "object": "organization.user",
        "id": person.openai,
        "name": person.name,
        "created_at": 1700000000 + PEOPLE.index(person) * 86400,
        "role": "owner",
    }


def openai_admin_key(
    key_id: str, name: str, person: Person, created: datetime, used: datetime | None
) -> dict[str, Any]:
    return {
        "object": "organization.admin_api_key",
        "id": key_id,
        "name": name,
        "redacted_value": f"sk-admin...{fake_upper(4).lower()}",
        "created_at": unix(created),
        "last_used_at": unix(used) if used else None,
        "expires_at": None,
        "owner": openai_user(person),
    }


def openai_project_key(
    key_id: str,
    name: str,
    created: datetime,
    used: datetime | None,
    expires: datetime | None,
    owner: dict[str, Any],
    access: str = "active",
) -> dict[str, Any]:
    return {
        "object": "organization.project.api_key",
        "id": key_id,
        "name": name,
        "redacted_value": f"sk-proj-...{fake_upper(4).lower()}",
        "created_at": unix(created),
        "last_used_at": unix(used) if used else None,
        "expires_at": unix(expires) if expires else None,
        "owner_project_access": access,
        "owner": owner,
    }


def openai_service_account(name: str) -> dict[str, Any]:
    return {
        "type": "service_account",
        "service_account": {
            "id": f"svc_acct_EXAMPLE{name.replace('-', '')}",
            "name": name,
            "role": "member",
            "created_at": 1760000000,
        },
    }


def openai_person_owner(person: Person) -> dict[str, Any]:
    return {
        "type": "user",
        "user": {
            "id": person.openai,
            "name": person.name,
            "email": person.email,
            "role": "member",
            "created_at": 1710000000,
        },
    }


def openai_list(items: list[dict[str, Any]]) -> dict[str, Any]:
    return {
        "object": "list",
        "data": items,
        "first_id": items[0]["id"],
        "last_id": items[-1]["id"],
        "has_more": False,
    }


def write_openai() -> None:
    admin = [
        openai_admin_key(
            "key_EXAMPLEadmin0001",
            "Inventory collector (read-only ops)",
            P["alice.admin"],
            ago(30),
            recent_use(),
        ),
        openai_admin_key(
            "key_EXAMPLEadmin0002",
            "bob temp admin key",
            P["bob.former"],
            datetime(2025, 2, 19, 21, 20, tzinfo=UTC),
            None,
        ),
        openai_admin_key(
            "key_EXAMPLEadmin0003",
            "finance usage export",
            P["grace.lindqvist"],
            ago(60),
            ago(1, 8),
        ),
    ]
    plant(
        "openai",
        "key_EXAMPLEadmin0002",
        "never_used",
        "high",
        "organization admin key created 2025-02-19 and never used",
    )
    plant(
        "openai",
        "key_EXAMPLEadmin0002",
        "owner_departed",
        "critical",
        "admin key of Bob, who left on 2026-08-15",
    )
    plant(
        "openai",
        "key_EXAMPLEadmin0003",
        "owner_departed",
        "critical",
        "admin key of Grace, who left on 2026-10-30, used yesterday",
    )
    write_json("openai_admin_api_keys.json", openai_list(admin))
    gateway = []
    for number in range(4):
        created = ago(healthy_age())
        gateway.append(
            openai_project_key(
                f"key_EXAMPLEgw{number:04d}",
                f"ai-gateway-{number}",
                created,
                recent_use(),
                created + timedelta(days=180),
                openai_service_account("svc-ai-gateway"),
            )
        )
    gateway.append(
        openai_project_key(
            "key_EXAMPLEgw0099",
            "ai-gateway-prod-2025",
            datetime(2025, 10, 9, 9, tzinfo=UTC),
            ago(1, 2),
            datetime(2026, 10, 9, 9, tzinfo=UTC),
            openai_service_account("svc-ai-gateway"),
        )
    )
    plant(
        "openai",
        "key_EXAMPLEgw0099",
        "expired_active",
        "high",
        "expired on 2026-10-09 but still used yesterday",
    )
    gateway.append(
        openai_project_key(
            "key_EXAMPLEgw0042",
            "bob-laptop-testing",
            datetime(2024, 10, 27, 3, 33, tzinfo=UTC),
            ago(3),
            None,
            openai_person_owner(P["bob.former"]),
            access="inactive",
        )
    )
    created = ago(healthy_age())
    gateway.append(
        openai_project_key(
            "key_EXAMPLEgw0077",
            "legacy-report-summaries",
            created,
            ago(4),
            created + timedelta(days=180),
            openai_service_account("svc-legacy-reports"),
        )
    )
    plant(
        "openai",
        "key_EXAMPLEgw0077",
        "holder_disabled",
        "high",
        "svc-legacy-reports is disabled but still holds a live project key",
    )
    plant(
        "openai",
        "key_EXAMPLEgw0042",
        "owner_departed",
        "high",
        "Bob lost project access when he left, but his key was used 3 days ago",
    )
    write_json("openai_project_keys_proj_EXAMPLEgateway.json", openai_list(gateway))
    support = []
    for number, person in enumerate(
        (P["chen.wei"], P["zara.ahmed"], P["hana.kobayashi"])
    ):
        created = ago(healthy_age())
        support.append(
            openai_project_key(
                f"key_EXAMPLEsp{number:04d}",
                f"{person.handle}-evals",
                created,
                recent_use(),
                created + timedelta(days=90),
                openai_person_owner(person),
            )
        )
    created = ago(healthy_age())
    support.append(
        openai_project_key(
            "key_EXAMPLEsp0010",
            "support-bot",
            created,
            recent_use(),
            created + timedelta(days=180),
            openai_service_account("svc-support-bot"),
        )
    )
    write_json("openai_project_keys_proj_EXAMPLEsupport.json", openai_list(support))


def anthropic_key(
    key_id: str,
    name: str,
    workspace: str | None,
    created: datetime,
    creator: Person | None,
    status: str = "active",
    expires: datetime | None = None,
) -> dict[str, Any]:
    return {
        "type": "api_key",
        "id": key_id,
        "name": name,
        "workspace_id": workspace,
        "created_at": created.strftime("%Y-%m-%dT%H:%M:%S.%fZ"),
        "created_by": {"id": creator.anthropic, "type": "user"} if creator else None,
        "partial_key_hint": f"sk-ant-api03-EXM...{fake_upper(4)}",
        "status": status,
        "expires_at": expires.strftime("%Y-%m-%dT%H:%M:%S.%fZ") if expires else None,
    }


def write_anthropic() -> None:
    workspace = "wrkspc_01EXAMPLEWORKSPACE0001"
    keys = []
    for number, person in enumerate(
        (P["dave.dev"], P["zara.ahmed"], P["chen.wei"], P["tomas.garcia"])
    ):
        keys.append(
            anthropic_key(
                f"apikey_01EXAMPLE{number:012d}",
                f"{person.handle}-workloads",
                workspace,
                ago(healthy_age()),
                person,
            )
        )
    keys.append(
        anthropic_key(
            "apikey_01EXAMPLE000000000101",
            "email-summariser-prod",
            workspace,
            datetime(2025, 4, 1, 9, tzinfo=UTC),
            P["bob.former"],
        )
    )
    plant(
        "anthropic",
        "apikey_01EXAMPLE000000000101",
        "owner_departed",
        "high",
        "created by Bob, who left on 2026-08-15",
    )
    keys.append(
        anthropic_key(
            "apikey_01EXAMPLE000000000102",
            "Default workspace scratch key",
            None,
            datetime(2024, 10, 30, 23, 58, 27, 427722, tzinfo=UTC),
            None,
        )
    )
    plant(
        "anthropic",
        "apikey_01EXAMPLE000000000102",
        "no_owner",
        "medium",
        "legacy key with no creator on record",
    )
    plant(
        "anthropic",
        "apikey_01EXAMPLE000000000102",
        "rotation_overdue",
        "medium",
        "created 2024-10-30",
    )
    keys.append(
        anthropic_key(
            "apikey_01EXAMPLE000000000103",
            "ticket-classifier",
            workspace,
            ago(40),
            P["ines.okafor"],
        )
    )
    plant(
        "anthropic",
        "apikey_01EXAMPLE000000000103",
        "owner_departed",
        "high",
        "created by Ines, who left on 2026-11-20",
    )
    keys.append(
        anthropic_key(
            "apikey_01EXAMPLE000000000104",
            "old experiment",
            workspace,
            ago(200),
            P["chen.wei"],
            status="archived",
        )
    )
    write_json(
        "anthropic_api_keys.json",
        {
            "data": keys,
            "first_id": keys[0]["id"],
            "last_id": keys[-1]["id"],
            "has_more": False,
        },
    )


# Slack, Okta, Google Workspace, Stripe ------------------------------------


def slack_app(
    app_id: str,
    name: str,
    scopes: list[tuple[str, bool, str]],
    approved: datetime,
    approver: Person,
    internal: bool,
) -> dict[str, Any]:
    return {
        "app": {
            "id": app_id,
            "name": name,
            "description": f"{name} for Example Widgets",
            "help_url": "",
            "privacy_policy_url": "",
            "app_homepage_url": "",
            "app_directory_url": "",
            "is_app_directory_approved": not internal,
            "is_internal": internal,
            "additional_info": "",
            "icons": {},
        },
        "scopes": [
            {
                "name": scope,
                "description": scope,
                "is_sensitive": sensitive,
                "token_type": token_type,
            }
            for scope, sensitive, token_type in scopes
        ],
        "date_updated": unix(approved),
        "last_resolved_by": {"actor_id": approver.slack, "actor_type": "user"},
    }


def write_slack() -> None:
    apps = [
        slack_app(
            "A0EXAMPLE001",
            "Deploy Notifier",
            [("chat:write", False, "bot")],
            ago(40),
            P["alice.admin"],
            True,
        ),
        slack_app(
            "A0EXAMPLE002",
            "Standup Bot",
            [("chat:write", False, "bot"), ("commands", False, "bot")],
            ago(55),
            P["alice.admin"],
            False,
        ),
        slack_app(
            "A0EXAMPLE003",
            "AI Triage (internal)",
            [("chat:write", False, "bot"), ("users:read.email", True, "bot")],
            ago(20),
            P["alice.admin"],
            True,
        ),
        slack_app(
            "A0EXAMPLE004",
            "Incident Paging",
            [("chat:write", False, "bot")],
            ago(33),
            P["carol.ops"],
            False,
        ),
        slack_app(
            "A0EXAMPLE009",
            "CRM Sync Bot",
            [("chat:write", False, "bot"), ("channels:history", True, "bot")],
            datetime(2025, 1, 1, tzinfo=UTC),
            P["bob.former"],
            False,
        ),
    ]
    plant(
        "slack",
        "app:A0EXAMPLE009",
        "owner_departed",
        "high",
        "approved and owned by Bob, who left on 2026-08-15",
    )
    write_json(
        "slack_admin_apps_approved_list.json",
        {"ok": True, "approved_apps": apps, "response_metadata": {"next_cursor": ""}},
    )
    logs = []
    hooks = [
        (
            "1000000101",
            "Incoming WebHooks",
            P["carol.ops"],
            "C0EXOPS",
            ago(45),
            "added",
        ),
        (
            "1000000102",
            "Incoming WebHooks",
            P["maya.singh"],
            "C0EXALERTS",
            ago(30),
            "added",
        ),
        (
            "1000000103",
            "Incoming WebHooks",
            P["amara.nwosu"],
            "C0EXDEALS",
            ago(62),
            "added",
        ),
        (
            "1000000001",
            "Incoming WebHooks",
            P["bob.former"],
            "C0EXSALES",
            datetime(2025, 1, 1, tzinfo=UTC),
            "added",
        ),
        ("1000000104", "Airbrake", P["carol.ops"], "C0EXOPS", ago(200), "added"),
        ("1000000104", "Airbrake", P["carol.ops"], "C0EXOPS", ago(20), "disabled"),
        (
            "1000000105",
            "Incoming WebHooks",
            P["omar.haddad"],
            "C0EXBUILD",
            ago(90),
            "added",
        ),
        (
            "1000000105",
            "Incoming WebHooks",
            P["omar.haddad"],
            "C0EXBUILD",
            ago(10),
            "removed",
        ),
    ]
    for service_id, service_type, person, channel, when, change in hooks:
        entry = {
            "service_id": service_id,
            "service_type": service_type,
            "user_id": person.slack,
            "user_name": person.handle,
            "channel": channel,
            "date": str(unix(when)),
            "change_type": change,
            "scope": "incoming-webhook",
        }
        if change in {"disabled", "removed"}:
            entry["reason"] = "user"
        logs.append(entry)
    logs.append(
        {
            "app_id": "A0EXAMPLE003",
            "app_type": "AI Triage (internal)",
            "user_id": P["alice.admin"].slack,
            "user_name": "alice.admin",
            "date": str(unix(ago(20))),
            "change_type": "updated",
            "scope": "chat:write,users:read.email",
        }
    )
    plant(
        "slack",
        "webhook:1000000001",
        "owner_departed",
        "high",
        "the #sales webhook was added by Bob, who left on 2026-08-15",
    )
    write_json(
        "slack_team_integration_logs.json",
        {
            "ok": True,
            "logs": logs,
            "paging": {"count": len(logs), "total": len(logs), "page": 1, "pages": 1},
        },
    )


def okta_token(
    token_id: str,
    name: str,
    person: Person,
    created: datetime,
    connection: str = "ZONE",
) -> dict[str, Any]:
    network: dict[str, Any] = {"connection": connection}
    if connection == "ZONE":
        network.update({"include": ["nzoexamplecorpzone01"], "exclude": []})
    base = f"https://{OKTA_HOST}/api/v1"
    return {
        "id": token_id,
        "name": name,
        "userId": person.okta,
        "clientName": "Okta API",
        "tokenWindow": "P30D",
        "created": iso_millis(created),
        "lastUpdated": iso_millis(created),
        "expiresAt": iso_millis(ahead(rng.randint(20, 29))),
        "network": network,
        "_link": {
            "self": {
                "href": f"{base}/api-tokens/{token_id}",
                "hints": {"allow": ["GET", "DELETE", "PUT"]},
            },
            "user": {
                "href": f"{base}/users/{person.okta}",
                "hints": {"allow": ["GET"]},
            },
        },
    }


def write_okta() -> None:
    tokens = [
        okta_token(
            "00TEXAMPLE000000001", "scim-provisioning", P["alice.admin"], ago(30)
        ),
        okta_token("00TEXAMPLE000000002", "siem-log-export", P["maya.singh"], ago(50)),
        okta_token(
            "00TEXAMPLE000000003", "access-review-export", P["noah.fischer"], ago(15)
        ),
        okta_token(
            "00TEXAMPLE000000009",
            "crm-provisioning",
            P["bob.former"],
            datetime(2025, 3, 1, 10, tzinfo=UTC),
            connection="ANYWHERE",
        ),
        okta_token(
            "00TEXAMPLE000000010",
            "hr-sync",
            P["carol.ops"],
            datetime(2025, 11, 1, 8, tzinfo=UTC),
        ),
    ]
    plant(
        "okta",
        "00TEXAMPLE000000009",
        "owner_departed",
        "critical",
        "made by Bob, who left on 2026-08-15; acts with his admin rights from anywhere",
    )
    plant(
        "okta",
        "00TEXAMPLE000000010",
        "rotation_overdue",
        "high",
        "admin API token created 2025-11-01 and never rotated",
    )
    write_json("okta_api_tokens.json", tokens)


GOOGLE_APPS = [
    (
        "Calendar Sync for Meeting Rooms",
        ["https://www.googleapis.com/auth/calendar.readonly"],
    ),
    ("Expense Receipts Reader", ["https://www.googleapis.com/auth/gmail.readonly"]),
    (
        "Sheets Dashboard Connector",
        ["https://www.googleapis.com/auth/spreadsheets.readonly", "openid"],
    ),
    (
        "Org Chart Viewer",
        ["https://www.googleapis.com/auth/admin.directory.user.readonly"],
    ),
    (
        "Docs Summariser",
        ["https://www.googleapis.com/auth/documents.readonly", "email"],
    ),
]


def google_client(name: str) -> str:
    digits = int(hashlib.sha256(name.encode()).hexdigest(), 16) % 10**12
    return f"{digits:012d}-example.apps.googleusercontent.com"


def token_event(
    person: Person, when: datetime, name: str, app: str, extra: list[dict[str, Any]]
) -> dict[str, Any]:
    return {
        "kind": "admin#reports#activity",
        "id": {
            "time": when.strftime("%Y-%m-%dT%H:%M:%S.000Z"),
            "uniqueQualifier": str(rng.randint(10**17, 10**18)),
            "applicationName": "token",
            "customerId": "C0example1",
        },
        "actor": {
            "callerType": "USER",
            "email": person.email,
            "profileId": person.google,
        },
        "events": [
            {
                "type": "auth",
                "name": name,
                "parameters": [
                    {"name": "client_id", "value": google_client(app)},
                    {"name": "app_name", "value": app},
                    {"name": "client_type", "value": "WEB"},
                    *extra,
                ],
            }
        ],
    }


def write_google() -> None:
    items = []
    events = []
    for number, person in enumerate(ACTIVE[:26]):
        app, scopes = GOOGLE_APPS[number % len(GOOGLE_APPS)]
        if "admin.directory" in scopes[0] and person.department != "IT":
            app, scopes = GOOGLE_APPS[0]
        items.append(google_grant(person, app, scopes))
        events.append(
            token_event(
                person,
                recent_use(),
                "activity",
                app,
                [
                    {"name": "api_name", "value": "calendar"},
                    {"name": "num_response_bytes", "intValue": "2048"},
                ],
            )
        )
    bob = P["bob.former"]
    items.append(
        google_grant(
            bob,
            "Email-to-CRM Bridge",
            [
                "https://mail.google.com/",
                "https://www.googleapis.com/auth/userinfo.email",
            ],
        )
    )
    events.append(
        token_event(
            bob,
            ago(1, 4),
            "activity",
            "Email-to-CRM Bridge",
            [{"name": "api_name", "value": "gmail"}],
        )
    )
    plant(
        "google_workspace",
        f"{bob.google}:{google_client('Email-to-CRM Bridge')}",
        "owner_departed",
        "high",
        "Bob's full Gmail grant to the CRM bridge is still active and used",
    )
    dave = P["dave.dev"]
    notebook = "Analytics Notebook Connector"
    items.append(
        google_grant(
            dave, notebook, ["https://www.googleapis.com/auth/drive", "openid"]
        )
    )
    events.append(token_event(dave, ago(130), "authorize", notebook, []))
    events.append(
        token_event(
            dave,
            ago(128),
            "activity",
            notebook,
            [{"name": "api_name", "value": "drive"}],
        )
    )
    source_id = f"{dave.google}:{google_client(notebook)}"
    plant(
        "google_workspace",
        source_id,
        "unused",
        "medium",
        "full Drive access granted to a notebook tool, idle for 128 days",
    )
    plant(
        "google_workspace",
        source_id,
        "no_expiry",
        "medium",
        "a Drive-wide OAuth grant never expires",
    )
    events.append(
        token_event(P["carol.ops"], ago(90), "revoke", "Old Newsletter Tool", [])
    )
    events.sort(key=lambda item: item["id"]["time"], reverse=True)
    write_json(
        "google_workspace_tokens.json",
        {"kind": "admin#directory#tokenList", "etag": '"example-etag"', "items": items},
    )
    write_json(
        "google_workspace_token_activity.json",
        {"kind": "admin#reports#activities", "etag": '"example-etag"', "items": events},
    )


def google_grant(person: Person, app: str, scopes: list[str]) -> dict[str, Any]:
    return {
        "kind": "admin#directory#token",
        "etag": '"example-etag"',
        "clientId": google_client(app),
        "displayText": app,
        "anonymous": False,
        "nativeApp": False,
        "scopes": scopes,
        "userKey": person.google,
    }


def stripe_key(
    key_id: str,
    name: str,
    redacted: str,
    created: datetime,
    used: datetime | None,
    livemode: bool = True,
    token: str | None = None,
) -> dict[str, Any]:
    return {
        "object": "v2.iam.api_key",
        "id": key_id,
        "name": name,
        "note": None,
        "type": "secret_key",
        "status": "active",
        "created": iso_millis(created),
        "expires_at": None,
        "last_used": iso_millis(used) if used else None,
        "livemode": livemode,
        "ip_allowlist": ["192.0.2.0/24"] if livemode else [],
        "managed_by": None,
        "publishable_key": None,
        "secret_key": {
            "encrypted_secret": None,
            "secret_token_redacted": redacted,
            "token": token,
        },
    }


def write_stripe() -> None:
    keys = [
        stripe_key(
            "mk_EXAMPLE0000000001",
            "billing-sync restricted",
            "rk_live_...EX01",
            ago(30),
            recent_use(),
        ),
        stripe_key(
            "mk_EXAMPLE0000000002",
            "revenue dashboard restricted",
            "rk_live_...EX02",
            ago(45),
            recent_use(),
        ),
        stripe_key(
            "mk_EXAMPLE0000000003",
            "legacy full-access key",
            "sk_live_...EX03",
            datetime(2025, 3, 3, 12, tzinfo=UTC),
            None,
        ),
        # List calls can return the key itself; the importer must drop it.
        stripe_key(
            "mk_EXAMPLE0000000004",
            "sandbox test key",
            "sk_test_...EX04",
            ago(20),
            ago(2),
            livemode=False,
            token="EXAMPLE-TESTMODE-TOKEN-PLACEHOLDER-MUST-BE-DROPPED",  # noqa: S106
        ),
    ]
    for key in keys:
        plant(
            "stripe",
            key["id"],
            "no_owner",
            "medium",
            "Stripe's key listing names no owner; nobody is assigned yet",
        )
    plant(
        "stripe",
        "mk_EXAMPLE0000000003",
        "never_used",
        "high",
        "full-access live key created 2025-03-03 and never used",
    )
    write_json(
        "stripe_api_keys.json",
        {"data": keys, "next_page_url": None, "previous_page_url": None},
    )


# Spreadsheets -------------------------------------------------------------

SHEET_HEADERS = [
    "credential_id",
    "credential_name",
    "system",
    "credential_type",
    "environment",
    "purpose",
    "accesses",
    "privilege_level",
    "observed_privilege",
    "identity_kind",
    "owner_email",
    "owner_team",
    "created_by",
    "created_at",
    "last_rotated_at",
    "rotation_interval_days",
    "expires_at",
    "last_used_at",
    "secret_hint",
    "stored_in",
    "used_by",
    "url",
    "status",
    "last_reviewed_at",
    "reviewed_by",
    "notes",
]
# (system, name, type, accesses, privilege, used_by, owner)
HEALTHY_SHEET = [
    (
        "HubSpot",
        "crm-sync private app",
        "private_app_token",
        "crm.objects.contacts.read, crm.objects.deals.write",
        "write",
        "crm-sync",
        "amara.nwosu",
    ),
    (
        "HubSpot",
        "lead-scoring private app",
        "private_app_token",
        "crm.objects.contacts.read",
        "read",
        "lead-scoring",
        "ravi.patel",
    ),
    (
        "SendGrid",
        "password-reset mailer",
        "api_key",
        "mail.send",
        "write",
        "auth-service",
        "lucas.ferreira",
    ),
    (
        "SendGrid",
        "invoice mailer",
        "api_key",
        "mail.send",
        "write",
        "billing",
        "julia.nowak",
    ),
    (
        "Datadog",
        "synthetics runner",
        "api_key",
        "synthetics:write",
        "write",
        "uptime-checks",
        "maya.singh",
    ),
    (
        "Datadog",
        "cost report reader",
        "api_key",
        "usage:read",
        "read",
        "finops-report",
        "anya.volkova",
    ),
    (
        "Notion",
        "roadmap sync",
        "api_key",
        "pages:read, databases:read",
        "read",
        "roadmap-sync",
        "leila.karimi",
    ),
    (
        "Notion",
        "meeting notes export",
        "api_key",
        "pages:read",
        "read",
        "notes-export",
        "mateo.silva",
    ),
    (
        "Zapier",
        "support form to ticket",
        "webhook_url",
        "catch hook",
        "write",
        "support-form",
        "tomas.garcia",
    ),
    (
        "Zapier",
        "deal won to slack",
        "webhook_url",
        "catch hook",
        "write",
        "sales-alerts",
        "ethan.clarke",
    ),
    (
        "HubSpot",
        "marketing forms",
        "private_app_token",
        "forms:write",
        "write",
        "website-forms",
        "elena.popescu",
    ),
    (
        "SendGrid",
        "event webhook verifier",
        "api_key",
        "mail.webhook.read",
        "read",
        "mail-events",
        "ravi.patel",
    ),
    (
        "Datadog",
        "log archive reader",
        "api_key",
        "logs:read",
        "read",
        "log-archive",
        "gabriel.costa",
    ),
    (
        "Notion",
        "support knowledge base",
        "api_key",
        "pages:read",
        "read",
        "support-bot",
        "hana.kobayashi",
    ),
    (
        "Zapier",
        "new hire checklist",
        "webhook_url",
        "catch hook",
        "write",
        "onboarding",
        "isabel.moreno",
    ),
    (
        "HubSpot",
        "ticket sync",
        "private_app_token",
        "tickets:write",
        "write",
        "support-sync",
        "oscar.lund",
    ),
    (
        "SendGrid",
        "digest mailer",
        "api_key",
        "mail.send",
        "write",
        "weekly-digest",
        "samuel.okoro",
    ),
    (
        "Datadog",
        "deploy markers",
        "api_key",
        "events:write",
        "write",
        "ci-pipeline",
        "daniel.kim",
    ),
    (
        "Notion",
        "okr tracker",
        "api_key",
        "databases:read",
        "read",
        "okr-report",
        "priya.raman",
    ),
    (
        "Zapier",
        "invoice paid to ledger",
        "webhook_url",
        "catch hook",
        "write",
        "ledger-sync",
        "felix.braun",
    ),
]


def day(moment: datetime) -> str:
    return moment.strftime("%Y-%m-%d")


def sheet_row(number: int, **values: Any) -> dict[str, Any]:
    created = ago(healthy_age())
    row: dict[str, Any] = {
        "credential_id": f"CRED-{number:04d}",
        "environment": "prod",
        "identity_kind": "service_account",
        "owner_team": "",
        "created_at": day(created),
        "last_rotated_at": day(created),
        "rotation_interval_days": "90",
        "expires_at": day(created + timedelta(days=180)),
        "last_used_at": day(ago(rng.randint(0, 2))),
        "secret_hint": f"…{fake_upper(4)}",
        "status": "active",
        "last_reviewed_at": day(ago(rng.randint(5, 60))),
        "reviewed_by": P["alice.admin"].email,
        "notes": "",
    }
    row.update(values)
    return row


def hook_url(host: str, scheme: str = "https") -> str:
    return f"{scheme}://{host}/hooks/catch/{rng.randint(100000, 999999)}/{fake_upper(4)}{rng.randint(10**11, 10**12)}/"


def write_sheet_csv() -> None:
    rows = []
    for number, (system, name, kind, accesses, privilege, used_by, owner) in enumerate(
        HEALTHY_SHEET, start=1
    ):
        person = P[owner]
        rows.append(
            sheet_row(
                number,
                credential_name=name,
                system=system,
                credential_type=kind,
                purpose=f"{name} automation",
                accesses=accesses,
                privilege_level=privilege,
                observed_privilege=privilege,
                owner_email=person.email,
                owner_team=person.department,
                created_by=person.email,
                stored_in=f"vault:kv/prod/{system.lower()}/{name.replace(' ', '-')}",
                used_by=used_by,
                url=hook_url("hooks.zapier.com") if kind == "webhook_url" else "",
            )
        )
    rows.extend(planted_sheet_rows())
    write_csv(
        "credential_inventory.csv",
        SHEET_HEADERS,
        [[row.get(header, "") for header in SHEET_HEADERS] for row in rows],
        bom=True,
    )


def planted_sheet_rows() -> list[dict[str, Any]]:
    bob = P["bob.former"]
    rows = [
        sheet_row(
            101,
            credential_name="crm-sync super admin token",
            system="HubSpot",
            credential_type="private_app_token",
            purpose="Contacts and deals sync",
            accesses="crm.objects.contacts.read, crm.objects.deals.write",
            privilege_level="write",
            observed_privilege="write",
            identity_kind="personal",
            owner_email=bob.email,
            created_by=bob.email,
            created_at="2024-01-10",
            last_rotated_at="N/A",
            expires_at="",
            stored_in="vault:kv/prod/hubspot/crm-sync-legacy",
            used_by="crm-sync (cron)",
            notes="tied to the super admin who made it",
        ),
        sheet_row(
            102,
            credential_name="#ops zap webhook",
            system="Zapier",
            credential_type="webhook_url",
            purpose="Ops alerts",
            accesses="catch hook",
            privilege_level="write",
            observed_privilege="write",
            owner_email="",
            created_by="",
            stored_in="vault:kv/prod/zapier/ops",
            used_by="ops-alerts",
            url=hook_url("hooks.zapier.com"),
            notes="no owner recorded",
        ),
        sheet_row(
            103,
            credential_name="metrics read key",
            system="Datadog",
            credential_type="api_key",
            purpose="Grafana import",
            accesses="metrics:read",
            privilege_level="read",
            observed_privilege="read",
            owner_email="",
            created_by="",
            stored_in="vault:kv/prod/datadog/grafana",
            used_by="grafana",
        ),
        sheet_row(
            104,
            credential_name="weekly digest notion token",
            system="Notion",
            credential_type="api_key",
            purpose="Weekly digest",
            accesses="pages:read",
            privilege_level="read",
            observed_privilege="read",
            identity_kind="personal",
            owner_email=P["leila.karimi"].email,
            created_by=P["leila.karimi"].email,
            stored_in="vault:kv/prod/notion/digest",
            used_by="weekly-digest (cron)",
        ),
        sheet_row(
            105,
            credential_name="newsletter full-access key",
            system="SendGrid",
            credential_type="api_key",
            purpose="Newsletter sends",
            accesses="mail.send, marketing, api_keys",
            privilege_level="admin",
            observed_privilege="admin",
            identity_kind="personal",
            owner_email=P["ravi.patel"].email,
            created_by=P["ravi.patel"].email,
            stored_in="vault:kv/prod/sendgrid/newsletter",
            used_by="newsletter (cron)",
        ),
        sheet_row(
            106,
            credential_name="datadog admin key for exports",
            system="Datadog",
            credential_type="api_key",
            purpose="Usage exports",
            accesses="usage:read, admin",
            privilege_level="admin",
            observed_privilege="read",
            owner_email=P["anya.volkova"].email,
            created_by=P["anya.volkova"].email,
            stored_in="vault:kv/prod/datadog/usage",
            used_by="usage-export",
        ),
        sheet_row(
            107,
            credential_name="marketing lists key",
            system="SendGrid",
            credential_type="api_key",
            purpose="Sync contact lists",
            accesses="marketing.lists",
            privilege_level="write",
            observed_privilege="read",
            owner_email=P["elena.popescu"].email,
            created_by=P["elena.popescu"].email,
            stored_in="vault:kv/prod/sendgrid/lists",
            used_by="list-sync",
        ),
        sheet_row(
            108,
            credential_name="legacy zap over http",
            system="Zapier",
            credential_type="webhook_url",
            purpose="Old form handler",
            accesses="catch hook",
            privilege_level="write",
            observed_privilege="write",
            owner_email=P["amara.nwosu"].email,
            created_by=P["amara.nwosu"].email,
            stored_in="vault:kv/prod/zapier/legacy",
            used_by="legacy-form",
            url=hook_url("hooks.zapier.com", "http"),
        ),
        sheet_row(
            109,
            credential_name="n8n deploy hook",
            system="Zapier",
            credential_type="webhook_url",
            purpose="Deploy notifications",
            accesses="webhook",
            privilege_level="write",
            observed_privilege="write",
            owner_email=P["omar.haddad"].email,
            created_by=P["omar.haddad"].email,
            stored_in="vault:kv/prod/zapier/deploy",
            used_by="deploy-notify",
            url=f"http://n8n.internal.{DOMAIN}/webhook/{fake_hex(24)}",
        ),
        sheet_row(
            110,
            credential_name="sendgrid key in .env",
            system="SendGrid",
            credential_type="api_key",
            purpose="Local test sends",
            accesses="mail.send",
            privilege_level="write",
            observed_privilege="write",
            owner_email=P["sofia.rossi"].email,
            created_by=P["sofia.rossi"].email,
            stored_in="web-app/.env",
            used_by="web-app",
        ),
        sheet_row(
            111,
            credential_name="hubspot admin key in code",
            system="HubSpot",
            credential_type="private_app_token",
            purpose="Data migration script",
            accesses="crm.schemas.write, settings.users.write",
            privilege_level="admin",
            observed_privilege="admin",
            owner_email=P["lucas.ferreira"].email,
            created_by=P["lucas.ferreira"].email,
            stored_in="code: migrations/hubspot_import.py",
            used_by="migration",
        ),
        sheet_row(
            112,
            credential_name="hubspot reporting key",
            system="HubSpot",
            credential_type="private_app_token",
            purpose="Pipeline report",
            accesses="crm.objects.deals.read",
            privilege_level="read",
            observed_privilege="read",
            owner_email=P["freya.hall"].email,
            created_by=P["freya.hall"].email,
            created_at="2026-05-01",
            last_rotated_at="2026-11-01",
            expires_at="2026-11-20",
            last_used_at=day(ago(1)),
            stored_in="vault:kv/prod/hubspot/reports",
            used_by="pipeline-report",
        ),
        sheet_row(
            113,
            credential_name="notion calendar key",
            system="Notion",
            credential_type="api_key",
            purpose="Team calendar",
            accesses="databases:read",
            privilege_level="read",
            observed_privilege="read",
            owner_email=P["mateo.silva"].email,
            created_by=P["mateo.silva"].email,
            created_at="2026-09-20",
            last_rotated_at="2026-09-20",
            expires_at="2026-11-15",
            last_used_at="2026-11-14",
            stored_in="vault:kv/prod/notion/calendar",
            used_by="calendar-sync",
        ),
        sheet_row(
            114,
            credential_name="mixpanel ingest key",
            system="Mixpanel",
            credential_type="api_key",
            purpose="Product events",
            accesses="events:write",
            privilege_level="write",
            observed_privilege="write",
            owner_email=P["elena.popescu"].email,
            created_by=P["elena.popescu"].email,
            stored_in="vault:kv/prod/mixpanel/ingest",
            used_by="web-app",
        ),
        sheet_row(
            115,
            credential_name="mixpanel export key",
            system="Mixpanel",
            credential_type="api_key",
            purpose="Funnel export",
            accesses="export:read",
            privilege_level="read",
            observed_privilege="read",
            owner_email=P["nora.berg"].email,
            created_by=P["nora.berg"].email,
            stored_in="vault:kv/prod/mixpanel/export",
            used_by="funnel-report",
        ),
        sheet_row(
            116,
            credential_name="sendgrid bulk key",
            system="SendGrid",
            credential_type="api_key",
            purpose="Bulk announcements",
            accesses="mail.send",
            privilege_level="write",
            observed_privilege="write",
            owner_email=P["ravi.patel"].email,
            created_by=P["ravi.patel"].email,
            created_at="2025-06-02",
            last_rotated_at="2025-06-02",
            expires_at="",
            stored_in="vault:kv/prod/sendgrid/bulk",
            used_by="announcements",
        ),
        sheet_row(
            117,
            credential_name="datadog rum key",
            system="Datadog",
            credential_type="api_key",
            purpose="Browser monitoring",
            accesses="rum:write",
            privilege_level="write",
            observed_privilege="write",
            owner_email=P["sofia.rossi"].email,
            created_by=P["sofia.rossi"].email,
            created_at=day(ago(45)),
            last_rotated_at=day(ago(45)),
            last_used_at="never",
            stored_in="vault:kv/prod/datadog/rum",
            used_by="web-app",
        ),
        sheet_row(
            118,
            credential_name="notion archive key",
            system="Notion",
            credential_type="api_key",
            purpose="Old archive job",
            accesses="pages:read",
            privilege_level="read",
            observed_privilege="read",
            owner_email=P["leila.karimi"].email,
            created_by=P["leila.karimi"].email,
            last_used_at="2026-06-01",
            stored_in="vault:kv/prod/notion/archive",
            used_by="archive-job",
        ),
        sheet_row(
            119,
            credential_name="hubspot forms key (Liam)",
            system="HubSpot",
            credential_type="private_app_token",
            purpose="Event sign-ups",
            accesses="forms:write",
            privilege_level="write",
            observed_privilege="write",
            owner_email=P["liam.oconnor"].email,
            created_by=P["liam.oconnor"].email,
            stored_in="vault:kv/prod/hubspot/events",
            used_by="event-signups",
        ),
    ]
    plant(
        "sheet",
        "CRED-0101",
        "owner_departed",
        "high",
        "HubSpot token of Bob, who left; the CRM sync still runs on it",
    )
    plant(
        "sheet",
        "CRED-0101",
        "personal_credential_automation",
        "medium",
        "a nightly cron runs on Bob's personal token",
    )
    plant(
        "sheet",
        "CRED-0101",
        "rotation_overdue",
        "medium",
        "created 2024-01-10 and never rotated",
    )
    plant(
        "sheet", "CRED-0102", "no_owner", "medium", "no owner recorded for the webhook"
    )
    plant("sheet", "CRED-0103", "no_owner", "medium", "no owner recorded for the key")
    plant(
        "sheet",
        "CRED-0104",
        "personal_credential_automation",
        "medium",
        "the weekly digest runs on Leila's personal Notion token",
    )
    plant(
        "sheet",
        "CRED-0105",
        "personal_credential_automation",
        "high",
        "the newsletter cron runs on Ravi's personal full-access key",
    )
    plant(
        "sheet",
        "CRED-0106",
        "excess_privilege",
        "medium",
        "admin key that only ever reads usage",
    )
    plant(
        "sheet",
        "CRED-0107",
        "excess_privilege",
        "low",
        "write key that only reads contact lists",
    )
    plant(
        "sheet",
        "CRED-0108",
        "plaintext_transport",
        "high",
        "Zapier hook called over http:// with the secret in the path",
    )
    plant(
        "sheet",
        "CRED-0109",
        "plaintext_transport",
        "high",
        "n8n webhook token sent over http://",
    )
    plant(
        "sheet",
        "CRED-0110",
        "found_outside_vault",
        "medium",
        "value kept in web-app/.env",
    )
    plant(
        "sheet",
        "CRED-0111",
        "found_outside_vault",
        "high",
        "admin token pasted into a migration script",
    )
    plant(
        "sheet",
        "CRED-0112",
        "expired_active",
        "high",
        "expired 2026-11-20 but used yesterday",
    )
    plant(
        "sheet",
        "CRED-0113",
        "expired_active",
        "medium",
        "expired 2026-11-15 and unused since, still marked active",
    )
    plant(
        "sheet",
        "CRED-0114",
        "system_decommissioned",
        "high",
        "Mixpanel was decommissioned on 2026-09-30 but the ingest key is live",
    )
    plant(
        "sheet",
        "CRED-0115",
        "system_decommissioned",
        "medium",
        "read key of the decommissioned Mixpanel",
    )
    plant("sheet", "CRED-0116", "rotation_overdue", "medium", "created 2025-06-02")
    plant(
        "sheet",
        "CRED-0117",
        "never_used",
        "high",
        "write key created 45 days ago and never used",
    )
    plant("sheet", "CRED-0118", "unused", "low", "last used 2026-06-01")
    plant(
        "sheet",
        "CRED-0119",
        "owner_departed",
        "high",
        "owned by Liam, who left on 2026-06-30",
    )
    return rows


XLSX_HEADERS = [
    "Ref",
    "Credential",
    "Service",
    "Type",
    "Scope",
    "Access level",
    "Owner",
    "Created",
    "Rotated on",
    "Expires",
    "Last used",
    "Location",
    "Used by",
    "Cost centre",
]
# (service, name, scope, access, owner)
XLSX_HEALTHY = [
    ("Stripe", "dashboard revenue export", "reports:read", "read", "felix.braun"),
    (
        "Stripe",
        "payout reconciliation",
        "payouts:read, balance:read",
        "read",
        "anya.volkova",
    ),
    (
        "HubSpot",
        "campaign attribution",
        "crm.objects.deals.read",
        "read",
        "elena.popescu",
    ),
    ("SendGrid", "campaign sender", "mail.send", "write", "ravi.patel"),
    (
        "Google Workspace",
        "finance shared drive sync",
        "drive.file",
        "write",
        "julia.nowak",
    ),
    ("Notion", "budget tracker", "databases:read", "read", "anya.volkova"),
    ("Stripe", "subscription metrics", "subscriptions:read", "read", "felix.braun"),
    ("HubSpot", "ad audience sync", "crm.lists.write", "write", "ravi.patel"),
    ("SendGrid", "receipt mailer", "mail.send", "write", "julia.nowak"),
    ("Notion", "campaign calendar", "pages:read", "read", "elena.popescu"),
    ("Stripe", "tax report export", "tax_reports:read", "read", "anya.volkova"),
    ("HubSpot", "webinar sign-ups", "forms:write", "write", "elena.popescu"),
    (
        "Google Workspace",
        "budget sheet reader",
        "spreadsheets.readonly",
        "read",
        "felix.braun",
    ),
    ("SendGrid", "dunning mailer", "mail.send", "write", "julia.nowak"),
    ("Notion", "vendor list", "databases:read", "read", "anya.volkova"),
    ("Stripe", "refund monitor", "refunds:read", "read", "julia.nowak"),
]


def write_sheet_xlsx() -> None:
    workbook = Workbook()
    sheet = workbook.active
    assert sheet is not None
    sheet.title = "Credentials"
    sheet.append(XLSX_HEADERS)
    for number, (service, name, scope, access, owner) in enumerate(
        XLSX_HEALTHY, start=1
    ):
        created = ago(healthy_age()).replace(tzinfo=None, hour=0, minute=0, second=0)
        # Some cells hold real dates, others the serial number Excel shows when a
        # column is formatted as a number.
        rotated: Any = (
            created if number % 2 else (created - datetime(1899, 12, 30)).days
        )
        sheet.append(
            [
                f"FIN-{number:03d}",
                name,
                service,
                "API key",
                scope,
                access,
                P[owner].email,
                created,
                rotated,
                created + timedelta(days=365),
                ago(rng.randint(0, 2)).replace(tzinfo=None),
                f"vault:kv/finance/{name.replace(' ', '-')}",
                name.split()[0],
                rng.choice(["FIN-100", "MKT-200"]),
            ]
        )
    grace = P["grace.lindqvist"]
    created = datetime(2026, 6, 1)
    sheet.append(
        [
            "FIN-101",
            "month-end close export",
            "Stripe",
            "API key",
            "balance_transactions:read",
            "read",
            grace.email,
            created,
            created,
            created + timedelta(days=365),
            ago(1).replace(tzinfo=None),
            "vault:kv/finance/month-end",
            "close-export",
            "FIN-100",
        ]
    )
    plant(
        "sheet",
        "FIN-101",
        "owner_departed",
        "high",
        "owned by Grace, who left on 2026-10-30",
    )
    created = ago(30).replace(tzinfo=None)
    sheet.append(
        [
            "FIN-102",
            "agency reporting key",
            "HubSpot",
            "API key",
            "crm.objects.deals.read",
            "read",
            "",
            created,
            created,
            "N/A",
            ago(2).replace(tzinfo=None),
            "sheet: Finance credentials tab",
            "agency-report",
            "MKT-200",
        ]
    )
    plant(
        "sheet",
        "FIN-102",
        "found_outside_vault",
        "medium",
        "the key itself is pasted into the finance spreadsheet",
    )
    plant("sheet", "FIN-102", "no_owner", "medium", "no owner recorded")
    workbook.save(OUT / "finance_marketing_credentials.xlsx")
    fix_xlsx_timestamps(OUT / "finance_marketing_credentials.xlsx")


def fix_xlsx_timestamps(path: Path) -> None:
    """Pin the workbook's zip entry times and creation date so reruns match."""
    import zipfile

    fixed = (2026, 12, 4, 0, 0, 0)
    entries = []
    with zipfile.ZipFile(path) as archive:
        for info in archive.infolist():
            data = archive.read(info.filename)
            if info.filename == "docProps/core.xml":
                text = data.decode()
                for tag in ("dcterms:created", "dcterms:modified"):
                    start = text.find(f"<{tag}")
                    if start != -1:
                        begin = text.index(">", start) + 1
                        end = text.index(f"</{tag}>", begin)
                        text = text[:begin] + "2026-12-04T00:00:00Z" + text[end:]
                data = text.encode()
            entries.append((info.filename, data))
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as archive:
        for name, data in entries:
            info = zipfile.ZipInfo(name, date_time=fixed)
            info.compress_type = zipfile.ZIP_DEFLATED
            archive.writestr(info, data)


# planted.json and main ----------------------------------------------------


def write_planted() -> None:
    document = {"now": "2026-12-04T00:00:00Z", "problems": PLANTED}
    write_json("planted.json", document)


README_HEAD = """# Example organisation: Example Widgets

A made-up company of 40 people (8 of them have left), 15 systems and about
200 credentials, as the export files an operations team would pull from each
provider. Everything is invented: example.com addresses, ids marked EXAMPLE or
fake, no secret values. "Now" for this data set is 2026-12-04.

`generate.py` writes every file here from a fixed random seed; rerun it after
changing it (`.venv/bin/python examples/generate.py`).

## Try it

```
keysteward import examples/
keysteward audit --as-of 2026-12-04
```

The folder import reads the roster first, then the systems file, the provider
listings, the spreadsheets and last the activity reports. Importing it a second
time reports 0 added and 0 changed.

## Files

| File | What it is |
|---|---|
| people_roster.csv | HR export: 40 people, status, termination date, manager, logins on each system |
| keysteward_systems.yaml | keysteward's native format: the 15 systems with owners, the service accounts, a few hand-tracked keys |
| aws_iam_credential_report.csv | IAM credential report of account 210987654321 |
| aws_list_access_keys_svc-analytics-etl.json, aws_get_access_key_last_used_*.json | AWS CLI listings merged into the report's keys by key id |
| gcp_keys_*.json, gcp_key_last_authentication.json | `gcloud iam service-accounts keys list` per service account, and last authentication per key |
| github_org_pat_grants.json, github_org_pat_requests.json, github_org_credential_authorizations.json | GitHub organization token grants, pending requests and SAML SSO authorizations |
| openai_admin_api_keys.json, openai_project_keys_proj_*.json | OpenAI admin keys and the keys of two projects |
| anthropic_api_keys.json | Anthropic organization API keys |
| slack_admin_apps_approved_list.json, slack_team_integration_logs.json | Slack approved apps and the webhook history |
| okta_api_tokens.json | Okta API tokens |
| google_workspace_tokens.json, google_workspace_token_activity.json | Google Workspace OAuth grants and their token activity |
| stripe_api_keys.json | Stripe managed API keys (one carries a test-mode token placeholder that the importer drops) |
| credential_inventory.csv | the operations team's hand-kept credential sheet (UTF-8 with BOM) |
| finance_marketing_credentials.xlsx | the finance and marketing sheet, with its own column names and Excel dates |
| planted.json | the problems below, by credential, rule and expected minimum severity |

## Planted problems

Each line names the credential (source and id), the audit rule that must fire
and the lowest severity it should have. Everything else is healthy: an active
owner, rotated and used recently, scoped, expiring where the provider allows
it, kept in the vault. Some findings follow from what an export cannot show
(AWS reports no scopes, Google grants no expiry) and stay at low severity.

"""


def write_readme() -> None:
    lines = [README_HEAD.rstrip("\n"), ""]
    for problem in PLANTED:
        lines.append(
            f"- `{problem['source']}` `{problem['source_id']}`: **{problem['rule']}** "
            f"({problem['severity']}): {problem['why']}"
        )
    (OUT / "README.md").write_text("\n".join(lines) + "\n", encoding="utf-8")


def main() -> None:
    global OUT
    if len(sys.argv) > 1:
        OUT = Path(sys.argv[1]).resolve()
        OUT.mkdir(parents=True, exist_ok=True)
    write_roster()
    write_native()
    write_aws()
    write_gcp()
    write_github()
    write_openai()
    write_anthropic()
    write_slack()
    write_okta()
    write_google()
    write_stripe()
    write_sheet_csv()
    write_sheet_xlsx()
    write_planted()
    write_readme()
    print(f"wrote the example organisation to {OUT} ({len(PLANTED)} planted problems)")


if __name__ == "__main__":
    main()
