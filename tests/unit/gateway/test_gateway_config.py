"""Gateway config: parsing, defaults and errors that name the key."""

from pathlib import Path

import pytest

from keysteward.errors import ConfigError
from keysteward.gateway.config import (
    DEFAULT_MAX_REQUEST_BYTES,
    Injection,
    gateway_config_path,
    load_gateway_config,
    parse_gateway_config,
)

VALID = """
defaults:
  read_timeout: 12
  rate_limit: {requests: 60, per_seconds: 60, burst: 10}
credential_cache_seconds: 5
systems:
  hubspot:
    upstream: https://api.hubapi.com/
    credential: {secret: hubspot-app, inject: header, name: X-Api-Key}
    connect_timeout: 2
    rules:
      - {methods: [get], path: "/crm/**", resource: contacts}
"""


def test_parse_valid_config() -> None:
    config = parse_gateway_config(VALID, "gw.yaml")

    system = config.systems["hubspot"]
    assert system.upstream == "https://api.hubapi.com"
    assert system.credential.inject is Injection.HEADER
    assert system.connect_timeout == 2
    assert system.read_timeout == 12
    assert system.max_request_bytes == DEFAULT_MAX_REQUEST_BYTES
    assert system.rate_limit is not None
    assert system.rate_limit.capacity == 10
    assert system.rate_limit.rate == 1
    assert system.rules[0].methods == frozenset({"GET"})
    assert config.credential_cache_seconds == 5


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("systems: [", "invalid YAML"),
        ("systemz: {}", "systemz"),
        (
            "systems: {a: {upstream: ftp://x, credential: {secret: s}}}",
            "systems.a.upstream",
        ),
        (
            "systems: {a: {upstream: 'https://u:p@x', credential: {secret: s}}}",
            "must not carry a user",
        ),
        (
            "systems: {a: {upstream: 'https://x', credential: {secret: s, inject: x}}}",
            "systems.a.credential.inject",
        ),
        (
            "systems: {a: {upstream: 'https://x', credential: {secret: s, "
            "inject: query}}}",
            "needs a name",
        ),
        (
            "systems: {a: {upstream: 'https://x', credential: {secret: s, "
            "username: u}}}",
            "only to inject basic",
        ),
        (
            "systems: {a: {upstream: 'https://x', credential: {secret: s}, "
            "rules: [{path: x, resource: r}]}}",
            "systems.a.rules.0",
        ),
        (
            "systems: {a: {upstream: 'https://x', credential: {secret: s}, "
            "rate_limit: {requests: 0, per_seconds: 1}}}",
            "rate_limit.requests",
        ),
    ],
)
def test_parse_rejects_with_location(text: str, message: str) -> None:
    with pytest.raises(ConfigError, match=message) as raised:
        parse_gateway_config(text, "gw.yaml")

    assert str(raised.value).startswith("gw.yaml")


def test_missing_file_is_empty_unless_required(tmp_path: Path) -> None:
    missing = tmp_path / "gateway.yaml"

    assert load_gateway_config(missing).systems == {}
    with pytest.raises(ConfigError, match="not found"):
        load_gateway_config(missing, required=True)


def test_config_path_from_environment(tmp_path: Path) -> None:
    named = tmp_path / "other.yaml"

    assert gateway_config_path(tmp_path, {}) == tmp_path / "gateway.yaml"
    assert (
        gateway_config_path(tmp_path, {"KEYSTEWARD_GATEWAY_CONFIG": str(named)})
        == named
    )
