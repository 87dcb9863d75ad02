"""API token format: prefix, length, checksum, and the published pattern."""

import logging

import pytest

from keysteward.logging import REDACTED, configure_logging, redact
from keysteward.tokens import prefix
from keysteward.tokens.prefix import (
    API_TOKEN_PATTERN,
    API_TOKEN_PREFIX,
    generate_api_token,
    has_valid_checksum,
)


def test_generated_token_shape() -> None:
    token = generate_api_token()
    assert token.startswith(API_TOKEN_PREFIX)
    assert len(token) == prefix.API_TOKEN_LENGTH
    assert API_TOKEN_PATTERN.fullmatch(token)
    assert has_valid_checksum(token)


def test_generated_tokens_differ() -> None:
    assert len({generate_api_token() for _ in range(50)}) == 50


@pytest.mark.parametrize("position", [len(API_TOKEN_PREFIX), 20, -1])
def test_typo_fails_checksum(position: int) -> None:
    token = generate_api_token()
    index = position % len(token)
    replacement = "A" if token[index] != "A" else "B"
    typo = token[:index] + replacement + token[index + 1 :]
    assert len(typo) == len(token)
    assert not has_valid_checksum(typo)


@pytest.mark.parametrize(
    "candidate",
    ["", "ks_api_", "ks_api_short", "ks_xyz_" + "a" * 49, "xx" + generate_api_token()],
)
def test_malformed_tokens_rejected(candidate: str) -> None:
    assert not has_valid_checksum(candidate)


def test_truncated_token_rejected() -> None:
    assert not has_valid_checksum(generate_api_token()[:-1])


def test_pattern_finds_token_in_text() -> None:
    token = generate_api_token()
    found = API_TOKEN_PATTERN.findall(f'export KS_TOKEN="{token}" # prod')
    assert found == [token]


def test_redaction_hides_token(caplog: pytest.LogCaptureFixture) -> None:
    token = generate_api_token()
    assert token not in redact(f"using {token}")
    assert REDACTED in redact(f"using {token}")
    configure_logging()
    logging.getLogger("keysteward.test").warning("token %s", token)
    assert token not in caplog.text
