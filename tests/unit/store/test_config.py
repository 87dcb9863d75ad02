"""Settings resolve flag over environment over file, and bad values are named."""

from pathlib import Path

import pytest

from keysteward.config import load_settings
from keysteward.errors import ConfigError


def test_flag_beats_environment(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("KEYSTEWARD_LOG_LEVEL", "ERROR")
    settings = load_settings(home=tmp_path, log_level="DEBUG")
    assert settings.log_level == "DEBUG"


def test_environment_beats_file(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    (tmp_path / "config.toml").write_text('log_level = "INFO"\n')
    monkeypatch.setenv("KEYSTEWARD_HOME", str(tmp_path))
    monkeypatch.setenv("KEYSTEWARD_LOG_LEVEL", "ERROR")
    assert load_settings().log_level == "ERROR"


def test_file_beats_default(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    (tmp_path / "config.toml").write_text('log_level = "INFO"\n')
    monkeypatch.setenv("KEYSTEWARD_HOME", str(tmp_path))
    monkeypatch.delenv("KEYSTEWARD_LOG_LEVEL", raising=False)
    assert load_settings().log_level == "INFO"


def test_default_store_is_sqlite_in_home(tmp_path: Path) -> None:
    settings = load_settings(home=tmp_path)
    assert settings.backend == "sqlite"
    assert settings.resolved_database_url.endswith(str(tmp_path / "keysteward.db"))


@pytest.mark.parametrize(
    ("url", "expected"),
    [
        ("mysql://root@localhost/x", "backend 'mysql' is not supported"),
        ("not a url", "not a database URL"),
        ("postgresql+asyncpg://u@h/d", "driver 'asyncpg'"),
    ],
)
def test_bad_database_url_named(tmp_path: Path, url: str, expected: str) -> None:
    with pytest.raises(ConfigError, match="KEYSTEWARD_DATABASE_URL") as caught:
        load_settings(home=tmp_path, database_url=url)
    assert expected in str(caught.value)


def test_bad_log_level_named(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="KEYSTEWARD_LOG_LEVEL"):
        load_settings(home=tmp_path, log_level="LOUD")


def test_malformed_config_file_named(tmp_path: Path) -> None:
    (tmp_path / "config.toml").write_text("[audit\nlog_level = 'INFO'\n")
    with pytest.raises(ConfigError, match="invalid settings file") as caught:
        load_settings(home=tmp_path)
    assert str(tmp_path / "config.toml") in str(caught.value)
