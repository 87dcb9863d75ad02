"""Gateway settings: one upstream per system, read from a YAML file.

The file is ``$KEYSTEWARD_HOME/gateway.yaml`` unless ``KEYSTEWARD_GATEWAY_CONFIG``
names another one. A missing file means a gateway with no systems, which
rejects every request with 404::

    defaults:                      # optional; each key can be set per system
      connect_timeout: 5           # seconds
      read_timeout: 30             # seconds between bytes from the upstream
      max_request_bytes: 10485760  # larger request bodies get 413
      rate_limit: {requests: 600, per_seconds: 60, burst: 100}
    credential_cache_seconds: 30   # how long a decrypted credential is reused
    systems:
      hubspot:
        upstream: https://api.hubapi.com
        credential:
          secret: hubspot-private-app   # vault secret name
          inject: bearer                # bearer, header, basic or query
          name: X-Api-Key               # header or query parameter name
          username: ops@example.com     # basic only; else the secret is user:password
        rules:
          - {methods: [GET], path: "/crm/v3/objects/contacts/**", resource: contacts}
          - {path: "/crm/v3/objects/deals/{id}", resource: "deals/{id}"}
"""

import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from enum import StrEnum
from pathlib import Path
from typing import Any

import httpx
import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from keysteward.errors import ConfigError
from keysteward.gateway.rules import Rule, RuleError, compile_rule

CONFIG_SETTING = "KEYSTEWARD_GATEWAY_CONFIG"
CONFIG_FILE_NAME = "gateway.yaml"
DEFAULT_CONNECT_TIMEOUT = 5.0
DEFAULT_READ_TIMEOUT = 30.0
DEFAULT_MAX_REQUEST_BYTES = 10 * 1024 * 1024
DEFAULT_CREDENTIAL_CACHE_SECONDS = 30.0


class Injection(StrEnum):
    """The place in the upstream request that carries the credential."""

    BEARER = "bearer"
    HEADER = "header"
    BASIC = "basic"
    QUERY = "query"


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class RateLimitSpec(_Strict):
    """A token bucket: ``requests`` per ``per_seconds``, up to ``burst`` at once."""

    requests: int = Field(gt=0)
    per_seconds: float = Field(gt=0)
    burst: int | None = Field(default=None, gt=0)

    @property
    def rate(self) -> float:
        """Tokens added per second."""
        return self.requests / self.per_seconds

    @property
    def capacity(self) -> int:
        return self.burst or self.requests


class CredentialSpec(_Strict):
    secret: str = Field(min_length=1, max_length=200)
    inject: Injection = Injection.BEARER
    name: str | None = Field(default=None, min_length=1, max_length=100)
    username: str | None = Field(default=None, min_length=1, max_length=200)


class RuleSpec(_Strict):
    path: str
    resource: str
    methods: list[str] | None = None
    action: str | None = None


class LimitsSpec(_Strict):
    connect_timeout: float | None = Field(default=None, gt=0)
    read_timeout: float | None = Field(default=None, gt=0)
    max_request_bytes: int | None = Field(default=None, ge=0)
    rate_limit: RateLimitSpec | None = None


class SystemSpec(LimitsSpec):
    upstream: str
    credential: CredentialSpec
    rules: list[RuleSpec] = Field(default_factory=list)

    @field_validator("upstream")
    @classmethod
    def _check_upstream(cls, value: str) -> str:
        url = httpx.URL(value)
        if url.scheme not in ("http", "https") or not url.host:
            raise ValueError("must be an http:// or https:// URL with a host")
        if url.userinfo or url.query or url.fragment:
            raise ValueError(
                "must not carry a user, query or fragment; put the credential "
                "in the vault and name it under credential.secret"
            )
        return value.rstrip("/")


class FileSpec(_Strict):
    defaults: LimitsSpec = Field(default_factory=LimitsSpec)
    credential_cache_seconds: float = Field(
        default=DEFAULT_CREDENTIAL_CACHE_SECONDS, ge=0
    )
    systems: dict[str, SystemSpec] = Field(default_factory=dict)


@dataclass(frozen=True)
class SystemConfig:
    """Everything the gateway needs to forward requests for one system."""

    name: str
    upstream: str
    credential: CredentialSpec
    rules: tuple[Rule, ...]
    connect_timeout: float
    read_timeout: float
    max_request_bytes: int
    rate_limit: RateLimitSpec | None


@dataclass(frozen=True)
class GatewayConfig:
    systems: Mapping[str, SystemConfig] = field(default_factory=dict)
    credential_cache_seconds: float = DEFAULT_CREDENTIAL_CACHE_SECONDS
    source: str = "<none>"


def _location(error: Mapping[str, Any]) -> str:
    return ".".join(str(part) for part in error["loc"]) or "(top level)"


def _system_config(name: str, spec: SystemSpec, defaults: LimitsSpec) -> SystemConfig:
    rules = []
    for position, rule in enumerate(spec.rules):
        try:
            rules.append(
                compile_rule(name, rule.path, rule.resource, rule.methods, rule.action)
            )
        except RuleError as exc:
            raise RuleError(f"systems.{name}.rules.{position}: {exc}") from None
    return SystemConfig(
        name=name,
        upstream=spec.upstream,
        credential=spec.credential,
        rules=tuple(rules),
        connect_timeout=spec.connect_timeout
        or defaults.connect_timeout
        or DEFAULT_CONNECT_TIMEOUT,
        read_timeout=spec.read_timeout or defaults.read_timeout or DEFAULT_READ_TIMEOUT,
        max_request_bytes=(
            spec.max_request_bytes
            if spec.max_request_bytes is not None
            else defaults.max_request_bytes
            if defaults.max_request_bytes is not None
            else DEFAULT_MAX_REQUEST_BYTES
        ),
        rate_limit=spec.rate_limit or defaults.rate_limit,
    )


def _check_credential(name: str, credential: CredentialSpec) -> None:
    needs_name = credential.inject in (Injection.HEADER, Injection.QUERY)
    if needs_name and not credential.name:
        raise ConfigError(
            f"systems.{name}.credential: inject {credential.inject} needs a name; "
            "add name: HEADER-OR-PARAMETER"
        )
    if credential.username is not None and credential.inject is not Injection.BASIC:
        raise ConfigError(
            f"systems.{name}.credential: username applies only to inject basic"
        )


def parse_gateway_config(text: str, source: str = "<gateway config>") -> GatewayConfig:
    """Parse and check a gateway YAML document; raise ConfigError naming the key."""
    try:
        raw = yaml.safe_load(text) or {}
    except yaml.YAMLError as exc:
        raise ConfigError(f"{source}: invalid YAML ({exc})") from None
    try:
        spec = FileSpec.model_validate(raw)
    except ValidationError as exc:
        error = exc.errors()[0]
        raise ConfigError(f"{source}: {_location(error)}: {error['msg']}") from None
    systems = {}
    for name, system in spec.systems.items():
        try:
            _check_credential(name, system.credential)
            systems[name] = _system_config(name, system, spec.defaults)
        except (ConfigError, RuleError) as exc:
            raise ConfigError(f"{source}: {exc}") from None
    return GatewayConfig(systems, spec.credential_cache_seconds, source)


def gateway_config_path(home: Path, environ: Mapping[str, str] | None = None) -> Path:
    """Return the configured gateway file, or ``gateway.yaml`` in ``home``."""
    environ = os.environ if environ is None else environ
    named = environ.get(CONFIG_SETTING)
    return Path(named) if named else home / CONFIG_FILE_NAME


def load_gateway_config(path: Path, *, required: bool = False) -> GatewayConfig:
    """Read ``path``; a missing file gives an empty config unless ``required``."""
    if not path.is_file():
        if required:
            raise ConfigError(
                f"gateway config {path} not found; create it or set {CONFIG_SETTING}"
            )
        return GatewayConfig(source=str(path))
    return parse_gateway_config(path.read_text(encoding="utf-8"), str(path))
