"""The redacting log filter hides secret-shaped values and keeps the rest."""

import logging

import pytest

from keysteward.logging import REDACTED, configure_logging, redact

# Built at run time so the repository itself holds no token-shaped strings.
GITHUB_TOKEN = "ghp_" + "a1B2c3D4e5" * 3 + "f6G7h8"
OPENAI_KEY = "sk-proj-" + "Zx9Yw8Vu7T" * 4
AWS_KEY_ID = "AKIA" + "QWERTYUIOP" + "ASDFGH"
RANDOM_BLOB = "9f8e7d6c5b4a3f2e1d0c" + "Ab12Cd34Ef56Gh78"


@pytest.mark.parametrize("secret", [GITHUB_TOKEN, OPENAI_KEY, AWS_KEY_ID, RANDOM_BLOB])
def test_redact_hides_secret(secret: str) -> None:
    redacted = redact(f"loaded credential {secret} for sync")
    assert secret not in redacted
    assert REDACTED in redacted
    assert redacted.startswith("loaded credential ")


def test_redact_hides_url_password() -> None:
    redacted = redact("connecting to postgresql://app:hunter2-hunter2@db.internal/crm")
    assert "hunter2" not in redacted
    assert "db.internal/crm" in redacted


def test_redact_hides_assignment() -> None:
    redacted = redact("config has password=Winter2026! and user=bob")
    assert "Winter2026" not in redacted
    assert "user=bob" in redacted


def test_redact_keeps_ordinary_text() -> None:
    text = "imported 40 credentials from aws_iam_credential_report.csv in 0.2 s"
    assert redact(text) == text


def test_logger_output_redacted(caplog: pytest.LogCaptureFixture) -> None:
    configure_logging("INFO")
    logger = logging.getLogger("keysteward.test")
    with caplog.at_level(logging.INFO, logger="keysteward"):
        logger.info("token %s issued", GITHUB_TOKEN)
    assert GITHUB_TOKEN not in caplog.text
    assert "issued" in caplog.text


def test_redact_keeps_uuid() -> None:
    request_id = "3f2a9c4e-8b1d-4e7f-9a6b-2c5d8e0f1a3b"
    text = f"GET /api/v1/secrets/{{name}} -> 200 (request id {request_id})"
    assert redact(text) == text


def test_redact_keeps_traceback_paths() -> None:
    # Fixed paths, because a checkout's own path may contain tokens of digits
    # mixed into letters, which stay redacted.
    traceback_text = (
        "Traceback (most recent call last):\n"
        '  File "/srv/app/.venv/lib/python3.11/site-packages/sqlalchemy/engine/'
        'base.py", line 1977, in _exec_single_context\n'
        '  File "/usr/lib/python3/dist-packages/keysteward/events/writer.py", '
        "line 338, in _commit\n"
        "sqlite3.OperationalError: no such column: nope\n"
    )
    assert redact(traceback_text) == traceback_text


@pytest.mark.parametrize(
    "secret",
    [
        # Base64 and lower-case-and-digit strings with several slashes.
        "q7Xb/9kLm/Zt4W/pR2vN8sYc" + "Hd5Fj3Ga1E",
        "a8f3/k2m9/q7x1/z5c2/" + "p0w4/e6r8/t1y3",
        # A lower-case token with few digits, after path-like parts.
        "oryooqsgfz9p/zfdojecrz6ub/" + "oux3uftaqcbb/tayokos0qhuj",
        "/api/hooks/" + "f3r09fquo6sbegzgsyebannd4yz0emrvftva0hip",
        "/services/deploy/trigger/" + "s0geeplbcifdopignmuqpvkwokcitbvwilju",
    ],
)
def test_redact_hides_secret_with_slashes(secret: str) -> None:
    redacted = redact(f"loaded credential {secret} for sync")
    assert secret not in redacted
    assert REDACTED in redacted
