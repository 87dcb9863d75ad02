"""A lost master key: init keeps the vault's key-encryption keys readable, and
every error points to the backup of the key file."""

from pathlib import Path

from typer.testing import CliRunner

from keysteward.cli import app

runner = CliRunner()
HUBSPOT_VALUE = "pat-na1-" + "5a4b3c2d" * 4


def _cli(home: Path, *args: str, stdin: str | None = None, env=None):
    return runner.invoke(app, ["--home", str(home), *args], input=stdin, env=env)


def _home_with_secret(tmp_path: Path, env=None) -> Path:
    home = tmp_path / "home"
    assert _cli(home, "init", env=env).exit_code == 0
    stored = _cli(home, "secret", "put", "hubspot", stdin=HUBSPOT_VALUE, env=env)
    assert stored.exit_code == 0, stored.output
    return home


def test_init_keeps_missing_key_missing(tmp_path: Path) -> None:
    home = _home_with_secret(tmp_path)
    key_file = home / "master.key"
    saved = key_file.read_bytes()
    key_file.unlink()

    result = _cli(home, "init")
    assert result.exit_code == 3
    assert "restore master.key from your backup" in result.output
    assert str(key_file) in result.output
    assert not key_file.exists()

    key_file.write_bytes(saved)
    key_file.chmod(0o600)
    read = _cli(home, "secret", "get", "hubspot")
    assert read.exit_code == 0, read.output
    assert read.stdout == HUBSPOT_VALUE


def test_secret_get_points_to_backup(tmp_path: Path) -> None:
    home = _home_with_secret(tmp_path)
    (home / "master.key").unlink()
    result = _cli(home, "secret", "get", "hubspot")
    assert result.exit_code == 3
    assert "restore master.key from your backup" in result.output
    assert "run `keysteward init`" not in result.output


def test_restore_without_key_points_to_backup(tmp_path: Path) -> None:
    home = _home_with_secret(tmp_path)
    backup = tmp_path / "store.backup"
    assert _cli(home, "backup", str(backup)).exit_code == 0
    result = _cli(tmp_path / "new-home", "restore", str(backup))
    assert result.exit_code == 3
    assert "restore master.key from your backup" in result.output


def test_init_creates_key_for_empty_vault(tmp_path: Path) -> None:
    home = tmp_path / "home"
    assert _cli(home, "init").exit_code == 0
    (home / "master.key").unlink()
    result = _cli(home, "init")
    assert result.exit_code == 0, result.output
    assert (home / "master.key").exists()


def test_init_keeps_passphrase_parameters_missing(tmp_path: Path) -> None:
    env = {
        "KEYSTEWARD_KEY_PROVIDER": "passphrase",
        "KEYSTEWARD_PASSPHRASE": "correct horse " + "battery staple",
    }
    home = _home_with_secret(tmp_path, env=env)
    params = home / "master-key-params.json"
    params.unlink()
    result = _cli(home, "init", env=env)
    assert result.exit_code == 3
    assert "restore master-key-params.json from your backup" in result.output
    assert not params.exists()
