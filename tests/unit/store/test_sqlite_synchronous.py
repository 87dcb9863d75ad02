"""KEYSTEWARD_SQLITE_SYNCHRONOUS sets PRAGMA synchronous on each SQLite connection."""

from pathlib import Path

import pytest
from sqlalchemy import text
from typer.testing import CliRunner

from keysteward.cli import app
from keysteward.config import Settings, load_settings
from keysteward.db import Store, create_store_engine, open_store
from keysteward.errors import ConfigError

SETTING = "KEYSTEWARD_SQLITE_SYNCHRONOUS"
# PRAGMA synchronous reports its level as a number.
NORMAL = 1
FULL = 2

runner = CliRunner()


def _pragmas(store: Store) -> list[tuple[int, str]]:
    """Return (synchronous, journal_mode) of two pool connections open at once."""
    # Raw driver connections, because a SQLAlchemy transaction on this store
    # begins with BEGIN IMMEDIATE, and the second would wait for the first.
    first = store.engine.raw_connection()
    second = store.engine.raw_connection()
    found = []
    try:
        for connection in (first, second):
            cursor = connection.cursor()
            synchronous = cursor.execute("PRAGMA synchronous").fetchone()[0]
            journal = cursor.execute("PRAGMA journal_mode").fetchone()[0]
            cursor.close()
            found.append((int(synchronous), str(journal)))
    finally:
        first.close()
        second.close()
    return found


def _opened_pragmas(settings: Settings) -> list[tuple[int, str]]:
    """Open a store for ``settings`` and return ``_pragmas`` of it."""
    store = open_store(settings)
    try:
        return _pragmas(store)
    finally:
        store.engine.dispose()


def test_default_is_full(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv(SETTING, raising=False)
    settings = load_settings(home=tmp_path)
    pragmas = _opened_pragmas(settings)
    assert settings.sqlite_synchronous == "FULL"
    assert pragmas == [(FULL, "wal"), (FULL, "wal")]


@pytest.mark.parametrize("value", ["NORMAL", "normal"])
def test_normal_from_environment(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, value: str
) -> None:
    monkeypatch.setenv(SETTING, value)
    settings = load_settings(home=tmp_path)
    pragmas = _opened_pragmas(settings)
    assert settings.sqlite_synchronous == "NORMAL"
    # NORMAL keeps commits atomic only in WAL mode, so WAL must stay on.
    assert pragmas == [(NORMAL, "wal"), (NORMAL, "wal")]


def test_normal_from_config_file(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv(SETTING, raising=False)
    (tmp_path / "config.toml").write_text('sqlite_synchronous = "NORMAL"\n')
    store = open_store(load_settings(home=tmp_path))
    try:
        pragmas = _pragmas(store)
    finally:
        store.engine.dispose()
    assert pragmas[0] == (NORMAL, "wal")


def test_invalid_value_named(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(SETTING, "OFF")
    with pytest.raises(ConfigError) as caught:
        load_settings(home=tmp_path)
    message = str(caught.value)
    assert "\n" not in message
    assert message.startswith(f"invalid setting {SETTING}:")
    assert "FULL or NORMAL" in message


def test_invalid_value_engine(tmp_path: Path) -> None:
    url = f"sqlite+pysqlite:///{tmp_path / 'keysteward.db'}"
    with pytest.raises(ConfigError, match=f"invalid {SETTING}='OFF'"):
        create_store_engine(url, "OFF")


def test_invalid_value_cli_one_line(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv(SETTING, raising=False)
    result = runner.invoke(
        app, ["--home", str(tmp_path), "status"], env={SETTING: "EXTRA"}
    )
    assert result.exit_code == 3, result.output
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1
    assert lines[0].startswith(f"error: invalid setting {SETTING}:")
    assert "FULL or NORMAL" in lines[0]
    assert "Traceback" not in result.output
    assert not (tmp_path / "keysteward.db").exists()


def test_postgresql_ignores_setting(postgres_url: str, tmp_path: Path) -> None:
    settings = Settings(
        home=tmp_path, database_url=postgres_url, sqlite_synchronous="NORMAL"
    )
    store = open_store(settings)
    try:
        with store.engine.connect() as connection:
            assert connection.execute(text("SELECT 1")).scalar() == 1
    finally:
        store.engine.dispose()
