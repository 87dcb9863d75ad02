"""The engine on the reference cases, allow comments, overlaps and redaction."""

import json
from pathlib import Path

import pytest

from keysteward.discovery.engine import Scanner, redact, shannon_entropy
from keysteward.discovery.rules import default_rules
from keysteward.discovery.sources import Document, ScanStats
from keysteward.discovery.sources.filesystem import file_documents


def scan_file(path: Path) -> list:
    scanner = Scanner(default_rules())
    stats = ScanStats()
    return [
        finding
        for document in file_documents(path, path.name, stats)
        for finding in scanner.scan(document)
    ]


def scan_cases(shared_dir: Path) -> list[tuple[dict, list]]:
    folder = shared_dir / "cases" / "scan"
    expected = json.loads((folder / "expected.json").read_text())
    return [(case, scan_file(folder / case["file"])) for case in expected]


def test_reference_cases(shared_dir: Path) -> None:
    for case, findings in scan_cases(shared_dir):
        expect = case["expect"]
        distinct = {finding.secret for finding in findings}
        if expect is True:
            assert findings, f"{case['file']}: nothing found ({case['what']})"
        elif expect is False:
            assert findings == [], f"{case['file']}: false positive ({case['what']})"
        else:
            assert len(distinct) >= int(expect), f"{case['file']}: {case['what']}"


def test_split_literal_found_at_first_line(shared_dir: Path) -> None:
    findings = scan_file(shared_dir / "cases" / "scan" / "s_split.py")
    assert [f.rule_id for f in findings] == ["anthropic-api-key"]
    assert findings[0].line == 2
    assert findings[0].context == "text+literals-joined"


def test_utf16_case_context(shared_dir: Path) -> None:
    findings = scan_file(shared_dir / "cases" / "scan" / "g_utf16le.txt")
    assert findings[0].context == "utf-16"
    assert findings[0].line == 1


def test_allow_comment_silences_line(samples: dict) -> None:
    text, _secret = samples["github-pat"]
    allowed = text.rstrip("\n") + "  # keysteward:allow\n"
    scanner = Scanner(default_rules())
    assert scanner.scan(Document(path="a.py", text=allowed, size=1)) == []
    both = allowed + text
    findings = scanner.scan(Document(path="a.py", text=both, size=1))
    assert [f.line for f in findings] == [2]


def test_json_escaped_key_found(samples: dict) -> None:
    _text, secret = samples["stripe-secret-key"]
    document = json.dumps({"cell": f'stripe.api_key = "{secret}"'})
    findings = Scanner(default_rules()).scan(
        Document(path="n.json", text=document, size=1)
    )
    assert [f.secret for f in findings] == [secret]


def test_percent_encoded_key_found(samples: dict) -> None:
    _text, secret = samples["slack-webhook-url"]
    encoded = secret.replace(":", "%3A").replace("/", "%2F")
    text = f"https://proxy.test/forward?target={encoded}&x=1\n"
    findings = Scanner(default_rules()).scan(Document(path="u.txt", text=text, size=1))
    assert [f.rule_id for f in findings] == ["slack-webhook-url"]
    assert findings[0].secret == secret
    assert findings[0].context == "text+url-decoded"


def test_minified_long_line(samples: dict) -> None:
    _text, secret = samples["sendgrid-api-key"]
    filler = "var a=function(b){return b*2};" * 20000
    text = filler + f'var k="{secret}";' + filler
    findings = Scanner(default_rules()).scan(
        Document(path="app.min.js", text=text, size=1)
    )
    assert [f.secret for f in findings] == [secret]
    assert findings[0].line == 1
    assert findings[0].column == len(filler) + 8


def test_pem_in_json_escaped(samples: dict) -> None:
    text, secret = samples["gcp-service-account-key"]
    findings = Scanner(default_rules()).scan(
        Document(path="sa.json", text=text, size=1)
    )
    assert [f.rule_id for f in findings] == ["gcp-service-account-key"]
    assert findings[0].line == 4


def test_private_key_without_client_email(samples: dict) -> None:
    text, _ = samples["gcp-service-account-key"]
    without = text.replace("client_email", "client_id")
    findings = Scanner(default_rules()).scan(
        Document(path="k.json", text=without, size=1)
    )
    assert [f.rule_id for f in findings] == ["private-key"]


def test_specific_rule_beats_generic(samples: dict) -> None:
    _text, secret = samples["github-pat"]
    findings = Scanner(default_rules()).scan(
        Document(path=".env", text=f"GITHUB_TOKEN={secret}\n", size=1)
    )
    assert [f.rule_id for f in findings] == ["github-pat"]


@pytest.mark.parametrize(
    ("secret", "expected"),
    [
        ("ghp_" + "Ab1" * 12, "ghp_…1Ab1"),
        ("short-one", "…(9 characters)"),
        (
            "https://hooks.example.test/services/T0/B0/abcdefgh",
            "https://hooks.example.test/…efgh",
        ),
        ("Rz" + "q" * 30, "Rz…qqqq"),
    ],
)
def test_redact(secret: str, expected: str) -> None:
    assert redact(secret) == expected


def test_redact_never_whole(samples: dict) -> None:
    for _text, secret in samples.values():
        shown = redact(secret)
        middle = secret[len(secret) // 2 - 4 : len(secret) // 2 + 4]
        assert secret not in shown
        assert middle not in shown


def test_shannon_entropy() -> None:
    assert shannon_entropy("") == 0.0
    assert shannon_entropy("aaaa") == 0.0
    assert shannon_entropy("abcd") == pytest.approx(2.0)
