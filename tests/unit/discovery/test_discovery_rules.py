"""Shipped rules: each format is found, placeholders are not, rule files load."""

from pathlib import Path

import pytest

from keysteward.discovery.engine import Scanner
from keysteward.discovery.rules import (
    default_rules,
    load_rule_file,
    load_rules,
    parse_rules,
    translate_go_regex,
)
from keysteward.discovery.sources import Document
from keysteward.errors import InvalidInputError

REQUIRED_FORMATS = {
    "openai-project-key",
    "openai-service-account-key",
    "openai-admin-key",
    "openai-legacy-key",
    "anthropic-api-key",
    "anthropic-admin-key",
    "hubspot-private-app-token",
    "slack-bot-token",
    "slack-user-token",
    "slack-app-token",
    "slack-webhook-url",
    "stripe-secret-key",
    "stripe-restricted-key",
    "google-api-key",
    "gcp-service-account-key",
    "github-pat",
    "github-oauth-token",
    "github-user-to-server-token",
    "github-app-installation-token",
    "github-refresh-token",
    "github-fine-grained-pat",
    "aws-access-key",
    "sendgrid-api-key",
    "mailchimp-api-key",
    "twilio-api-key",
    "airtable-pat",
    "notion-integration-token",
    "zapier-webhook-url",
    "make-webhook-url",
    "jwt",
    "private-key",
    "database-uri-password",
    "keysteward-api-token",
    "generic-secret-assignment",
}


def scan_text(text: str, path: str = "config.txt") -> list:
    return Scanner(default_rules()).scan(Document(path=path, text=text, size=len(text)))


def reported_rule_ids() -> list[str]:
    return [rule.id for rule in default_rules().rules if not rule.skip_report]


def test_default_rules_cover_formats() -> None:
    ids = set(reported_rule_ids())
    assert ids >= REQUIRED_FORMATS
    assert len(ids) >= 40


@pytest.mark.parametrize("rule_id", reported_rule_ids())
def test_rule_finds_its_format(rule_id: str, samples: dict) -> None:
    text, secret = samples[rule_id]
    findings = scan_text(text)
    assert [finding.rule_id for finding in findings] == [rule_id]
    assert findings[0].secret == secret


@pytest.mark.parametrize("rule_id", reported_rule_ids())
def test_rule_line_and_column(rule_id: str, samples: dict) -> None:
    text, secret = samples[rule_id]
    findings = scan_text("# header\n\n" + text)
    assert findings[0].line >= 3


@pytest.mark.parametrize(
    "text",
    [
        "aws_access_key_id = AKIA" + "IOSFODNN7EXAMPLE\n"
        "aws_secret_access_key = wJalrXUtnFEMI/K7MDENG/bPxRfiCY" + "EXAMPLEKEY\n",
        'OPENAI_API_KEY="sk-' + "proj-" + "x" * 60 + '"\n',
        "api_key = <your-" + "api-key>\n",
        "password = ${DB_" + "PASSWORD}\n",
        "password: changeme" + "123456\n",
        "token = '{{ vault_" + "token }}'\n",
        "secret_key = os.environ['SECRET_KEY']\n",
        "DATABASE_URL=postgresql://user:" + "password@localhost/db\n",
        "GITHUB_TOKEN=ghp_" + "x" * 36 + "\n",
        "token = YOUR_" + "TOKEN_HERE\n",
        "password = hunter2\n",
        'api_key = "' + "0" * 32 + '"\n',
        "Authorization: Bearer ${TOKEN}\n",
        "sk-" + "ant-api03-" + "x" * 93 + "AA\n",
    ],
)
def test_placeholders_not_reported(text: str) -> None:
    assert scan_text(text) == []


def test_aws_key_id_alone_not_reported(fake_token) -> None:
    key_id = "AK" + "IA" + "QWERTYUIOPASDFGH"
    assert scan_text(f"aws_access_key_id = {key_id}\n") == []


def test_aws_pair_reports_secret(samples: dict) -> None:
    text, secret = samples["aws-access-key"]
    findings = scan_text(text)
    assert len(findings) == 1
    assert findings[0].secret == secret
    assert findings[0].identifier is not None
    assert findings[0].identifier.startswith("AK" + "IA")


def test_aws_secret_too_far_away(samples: dict) -> None:
    text, _secret = samples["aws-access-key"]
    first, second = text.splitlines()
    far = first + "\n" + "\n" * 10 + second + "\n"
    assert [f.rule_id for f in scan_text(far)] == ["generic-secret-assignment"]


def test_gitleaks_layout_loads(tmp_path: Path, fake_token) -> None:
    rule_file = tmp_path / "team.toml"
    rule_file.write_text(
        """
title = "team rules"

[allowlist]
description = "global"
stopwords = ["tutorial"]

[[rules]]
id = "acme-internal-token"
description = "Acme internal token"
regex = '''(?i)\\b(acme_[a-z0-9]{24})\\b'''
secretGroup = 1
keywords = ["acme_"]
entropy = 3.0
tags = ["internal"]

[rules.allowlist]
regexes = ['''acme_0{24}''']
""",
        encoding="utf-8",
    )
    ruleset = load_rules([rule_file])
    token = fake_token("acme_", 24).lower()
    findings = Scanner(ruleset).scan(
        Document(path="a.py", text=f"t = '{token}'\n", size=10)
    )
    assert [f.rule_id for f in findings] == ["acme-internal-token"]
    assert findings[0].secret == token
    quiet = Scanner(ruleset).scan(
        Document(path="a.py", text="t = 'acme_" + "0" * 24 + "'\n", size=10)
    )
    assert quiet == []


def test_team_rule_replaces_same_id(tmp_path: Path) -> None:
    rule_file = tmp_path / "override.toml"
    rule_file.write_text(
        "[[rules]]\nid = 'github-pat'\ndescription = 'changed'\n"
        "regex = '''ghp_[A-Za-z0-9]{36}'''\nkeywords = ['ghp_']\n",
        encoding="utf-8",
    )
    ruleset = load_rules([rule_file])
    matching = [rule for rule in ruleset.rules if rule.id == "github-pat"]
    assert len(matching) == 1
    assert matching[0].description == "changed"


@pytest.mark.parametrize(
    ("content", "message"),
    [
        ("[[rules]]\nid = 'x'\nregex = '''(unclosed'''\n", "invalid regex"),
        ("[[rules]]\nregex = 'abc'\n", "has no id"),
        ("[[rules]\n", "invalid TOML"),
        ("[[rules]]\nid = 'x'\n", "has no regex"),
        ("[[rules]]\nid = 'x'\nregex = 'a'\nsecretGroup = 2\n", "secretGroup = 2"),
        (
            "[[rules]]\nid = 'x'\nregex = 'a'\n[[rules.required]]\nid = 'nope'\n",
            "unknown rule 'nope'",
        ),
    ],
)
def test_bad_rule_file_rejected(tmp_path: Path, content: str, message: str) -> None:
    rule_file = tmp_path / "bad.toml"
    rule_file.write_text(content, encoding="utf-8")
    with pytest.raises(InvalidInputError) as raised:
        load_rules([rule_file])
    assert message in str(raised.value)
    assert "bad.toml" in str(raised.value)


def test_missing_rule_file_rejected(tmp_path: Path) -> None:
    with pytest.raises(InvalidInputError, match="--rules"):
        load_rule_file(tmp_path / "absent.toml")


def test_go_inline_flag_translated() -> None:
    pattern, flags = translate_go_regex(r"key[[:digit:]]+(?i)abc\z")
    assert pattern == r"key[0-9]+abc\Z"
    assert flags != 0


def test_parse_rules_keeps_order() -> None:
    ruleset = parse_rules(
        "[[rules]]\nid = 'b'\nregex = 'b'\n[[rules]]\nid = 'a'\nregex = 'a'\n", "t"
    )
    assert [rule.id for rule in ruleset.rules] == ["b", "a"]
