"""Audit thresholds, read from the ``[audit]`` table of the settings file.

Example ``config.toml``::

    [audit]
    rotation_max_age_days = 90
    unused_days = 90

    [audit.rules.unknown_access]
    enabled = false

    [audit.systems.aws]
    rotation_max_age_days = 60

A threshold for one system is resolved in this order: the
``[audit.systems.<name>]`` table, then ``System.rotation_max_age_days`` in the
store (rotation only), then the ``[audit]`` table, then the defaults below.
"""

import tomllib
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from keysteward.config import CONFIG_FILE_NAME, Settings
from keysteward.errors import ConfigError
from keysteward.findings.models import Severity

# The rule ids that importers, the example organisation and reports share.
INVENTORY_RULE_IDS = (
    "owner_departed",
    "system_decommissioned",
    "holder_disabled",
    "no_owner",
    "unknown_access",
    "rotation_overdue",
    "never_used",
    "unused",
    "expired_active",
    "no_expiry",
    "personal_credential_automation",
    "excess_privilege",
    "duplicate_secret",
    "plaintext_transport",
    "found_outside_vault",
)
# Rules that read offboarding facts (service-account owners, vault reads).
DEPARTURE_RULE_IDS = ("account_owner_departed", "departed_reader")
RULE_IDS = INVENTORY_RULE_IDS + DEPARTURE_RULE_IDS

DEFAULT_TOKEN_KINDS = ("personal_access_token", "oauth_token", "service_account_key")
DEFAULT_OUTSIDE_VAULT_LOCATIONS = (
    "code",
    ".env",
    "env",
    "sheet",
    "spreadsheet",
    "mail",
    "email",
    "chat",
    "slack",
    "wiki",
    "notes",
)
DEFAULT_PLAINTEXT_SCHEMES = ("http", "ftp", "ldap", "redis", "amqp", "mqtt", "ws")


class RuleSettings(BaseModel):
    """Switches for one rule: whether it runs, and a minimum severity."""

    model_config = ConfigDict(extra="forbid")

    enabled: bool = True
    # Raise every finding of the rule to at least this severity.
    min_severity: Severity | None = None


class Thresholds(BaseModel):
    """The numbers and lists the rules compare credentials against."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    rotation_max_age_days: int = Field(default=90, ge=1)
    unused_days: int = Field(default=90, ge=1)
    # A credential created this recently may be unused because it is new.
    never_used_grace_days: int = Field(default=14, ge=0)
    # Days after a person's departure before their credentials are reported.
    departed_grace_days: int = Field(default=0, ge=0)
    # Days after the expiry date before an active expired credential is reported.
    expired_grace_days: int = Field(default=0, ge=0)
    # A token valid for longer than this counts as having no expiry.
    max_token_lifetime_days: int = Field(default=366, ge=1)
    token_kinds: tuple[str, ...] = DEFAULT_TOKEN_KINDS
    outside_vault_locations: tuple[str, ...] = DEFAULT_OUTSIDE_VAULT_LOCATIONS
    plaintext_schemes: tuple[str, ...] = DEFAULT_PLAINTEXT_SCHEMES
    disabled_rules: tuple[str, ...] = ()


class SystemOverride(BaseModel):
    """Thresholds for one system; unset fields fall back to ``[audit]``."""

    model_config = ConfigDict(extra="forbid")

    rotation_max_age_days: int | None = Field(default=None, ge=1)
    unused_days: int | None = Field(default=None, ge=1)
    never_used_grace_days: int | None = Field(default=None, ge=0)
    departed_grace_days: int | None = Field(default=None, ge=0)
    expired_grace_days: int | None = Field(default=None, ge=0)
    max_token_lifetime_days: int | None = Field(default=None, ge=1)
    token_kinds: tuple[str, ...] | None = None
    outside_vault_locations: tuple[str, ...] | None = None
    plaintext_schemes: tuple[str, ...] | None = None
    disabled_rules: tuple[str, ...] | None = None


class AuditConfig(Thresholds):
    """The whole ``[audit]`` table: defaults, per-rule switches, per-system tables."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    rules: dict[str, RuleSettings] = Field(default_factory=dict)
    systems: dict[str, SystemOverride] = Field(default_factory=dict)

    def thresholds_for(
        self, system_name: str | None, system_rotation_days: int | None = None
    ) -> Thresholds:
        """Return the thresholds for credentials of ``system_name``."""
        values = {name: getattr(self, name) for name in Thresholds.model_fields}
        if system_rotation_days is not None:
            values["rotation_max_age_days"] = system_rotation_days
        override = self.systems.get(system_name or "")
        if override is not None:
            values.update(override.model_dump(exclude_none=True))
        return Thresholds(**values)

    def rule_enabled(self, rule: str) -> bool:
        settings = self.rules.get(rule)
        return settings is None or settings.enabled

    def min_severity(self, rule: str) -> Severity | None:
        settings = self.rules.get(rule)
        return None if settings is None else settings.min_severity


@dataclass(frozen=True)
class _Source:
    path: Path
    table: dict[str, Any]


def settings_file(settings: Settings) -> Path:
    """Return the settings file the audit reads: the configured one or HOME's."""
    return settings.config_file or settings.home / CONFIG_FILE_NAME


def load_audit_config(settings: Settings) -> AuditConfig:
    """Read the ``[audit]`` table from the settings file; defaults when absent.

    Raises ConfigError naming the file and the key when a value is invalid.
    """
    source = _read_audit_table(settings_file(settings))
    return parse_audit_config(source.table, source.path)


def parse_audit_config(table: dict[str, Any], path: Path | str) -> AuditConfig:
    """Validate an ``[audit]`` table; ``path`` is named in error messages."""
    try:
        config = AuditConfig.model_validate(table)
    except ValidationError as exc:
        error = exc.errors()[0]
        key = ".".join(str(part) for part in error["loc"])
        raise ConfigError(
            f"invalid audit setting audit.{key} in {path}: {error['msg']}; "
            "fix or remove it"
        ) from None
    _check_rule_names(config, path)
    return config


def _read_audit_table(path: Path) -> _Source:
    if not path.is_file():
        return _Source(path, {})
    try:
        document = tomllib.loads(path.read_text(encoding="utf-8"))
    except (tomllib.TOMLDecodeError, UnicodeDecodeError) as exc:
        raise ConfigError(f"invalid settings file {path}: {exc}") from None
    table = document.get("audit", {})
    if not isinstance(table, dict):
        raise ConfigError(f"invalid settings file {path}: 'audit' must be a table")
    return _Source(path, table)


def _check_rule_names(config: AuditConfig, path: Path | str) -> None:
    named = set(config.rules) | set(config.disabled_rules)
    for override in config.systems.values():
        named |= set(override.disabled_rules or ())
    unknown = sorted(named - set(RULE_IDS))
    if unknown:
        raise ConfigError(
            f"unknown audit rule {unknown[0]!r} in {path}; "
            f"valid rules: {', '.join(RULE_IDS)}"
        )
