"""Thresholds from the settings file, per-system overrides and rule switches."""

from pathlib import Path

import pytest

from common.audit_inventory import AS_OF, InventoryBuilder, days_ago
from keysteward.audit.config import AuditConfig, load_audit_config, parse_audit_config
from keysteward.audit.engine import run_audit
from keysteward.config import Settings
from keysteward.db import Store
from keysteward.errors import ConfigError


def _rules_by_credential(store: Store, config: AuditConfig) -> dict[int, set[str]]:
    fired: dict[int, set[str]] = {}
    for finding in run_audit(store, as_of=AS_OF, config=config).findings:
        fired.setdefault(finding.credential_id, set()).add(finding.rule)
    return fired


def test_rotation_threshold_changes_outcome(store: Store) -> None:
    with store.session() as session:
        key = InventoryBuilder(session).credential(created_at=days_ago(150)).id

    default = _rules_by_credential(store, AuditConfig())
    relaxed = _rules_by_credential(
        store, parse_audit_config({"rotation_max_age_days": 200}, "test")
    )

    assert "rotation_overdue" in default[key]
    assert key not in relaxed


def test_unused_threshold_changes_outcome(store: Store) -> None:
    with store.session() as session:
        key = InventoryBuilder(session).credential(last_used_at=days_ago(40)).id

    default = _rules_by_credential(store, AuditConfig())
    strict = _rules_by_credential(store, parse_audit_config({"unused_days": 30}, "t"))

    assert key not in default
    assert strict[key] == {"unused"}


def test_system_override_applies_to_one_system(store: Store) -> None:
    with store.session() as session:
        builder = InventoryBuilder(session)
        aws_key = builder.credential(system="aws", created_at=days_ago(70)).id
        github_key = builder.credential(system="github", created_at=days_ago(70)).id
    config = parse_audit_config(
        {"systems": {"aws": {"rotation_max_age_days": 60}}}, "test"
    )

    fired = _rules_by_credential(store, config)

    assert fired[aws_key] == {"rotation_overdue"}
    assert github_key not in fired


def test_system_column_overrides_default(store: Store) -> None:
    with store.session() as session:
        builder = InventoryBuilder(session)
        builder.system("stripe", rotation_max_age_days=30)
        key = builder.credential(system="stripe", created_at=days_ago(40)).id

    assert _rules_by_credential(store, AuditConfig())[key] == {"rotation_overdue"}


def test_config_override_beats_system_column(store: Store) -> None:
    with store.session() as session:
        builder = InventoryBuilder(session)
        builder.system("stripe", rotation_max_age_days=30)
        key = builder.credential(system="stripe", created_at=days_ago(40)).id
    config = parse_audit_config(
        {"systems": {"stripe": {"rotation_max_age_days": 45}}}, "test"
    )

    assert key not in _rules_by_credential(store, config)


def test_rule_switches(store: Store) -> None:
    with store.session() as session:
        builder = InventoryBuilder(session)
        key = builder.credential(scopes=[], privilege="unknown").id
    disabled = parse_audit_config(
        {"rules": {"unknown_access": {"enabled": False}}}, "test"
    )
    raised = parse_audit_config(
        {"rules": {"unknown_access": {"min_severity": "high"}}}, "test"
    )

    assert key not in _rules_by_credential(store, disabled)
    findings = run_audit(store, as_of=AS_OF, config=raised).findings
    assert [(f.rule, f.severity) for f in findings] == [("unknown_access", "high")]


def test_disabled_rules_per_system(store: Store) -> None:
    with store.session() as session:
        builder = InventoryBuilder(session)
        okta_key = builder.credential(system="okta", scopes=[], privilege="unknown").id
        slack_key = builder.credential(
            system="slack", scopes=[], privilege="unknown"
        ).id
    config = parse_audit_config(
        {"systems": {"okta": {"disabled_rules": ["unknown_access"]}}}, "test"
    )

    fired = _rules_by_credential(store, config)

    assert okta_key not in fired
    assert fired[slack_key] == {"unknown_access"}


def test_load_reads_settings_file(tmp_path: Path) -> None:
    home = tmp_path / "home"
    home.mkdir()
    (home / "config.toml").write_text(
        'log_level = "INFO"\n'
        "[audit]\nrotation_max_age_days = 120\n"
        "[audit.systems.aws]\nrotation_max_age_days = 60\n",
        encoding="utf-8",
    )

    config = load_audit_config(Settings(home=home))

    assert config.rotation_max_age_days == 120
    assert config.thresholds_for("aws").rotation_max_age_days == 60
    assert config.thresholds_for("github").rotation_max_age_days == 120
    assert config.thresholds_for("github").unused_days == 90


def test_load_without_file_uses_defaults(tmp_path: Path) -> None:
    config = load_audit_config(Settings(home=tmp_path / "none"))
    assert config.rotation_max_age_days == 90
    assert config.unused_days == 90


@pytest.mark.parametrize(
    ("table", "named"),
    [
        ({"rotation_max_age_days": 0}, "audit.rotation_max_age_days"),
        ({"rotation_days": 30}, "audit.rotation_days"),
        (
            {"systems": {"aws": {"unused_days": "soon"}}},
            "audit.systems.aws.unused_days",
        ),
        ({"rules": {"no_such_rule": {"enabled": False}}}, "no_such_rule"),
        ({"disabled_rules": ["stale"]}, "stale"),
    ],
)
def test_invalid_setting_named(table: dict[str, object], named: str) -> None:
    with pytest.raises(ConfigError) as raised:
        parse_audit_config(table, "/etc/keysteward/config.toml")
    assert named in str(raised.value)
    assert "/etc/keysteward/config.toml" in str(raised.value)


def test_audit_not_a_table(tmp_path: Path) -> None:
    path = tmp_path / "config.toml"
    path.write_text("audit = 3\n", encoding="utf-8")
    with pytest.raises(ConfigError) as raised:
        load_audit_config(Settings(home=tmp_path, config_file=path))
    assert str(path) in str(raised.value)
    assert "must be a table" in str(raised.value)
