"""Key providers: key file permissions, environment key, passphrase, misuse."""

import base64
import os
from pathlib import Path

import pytest

from keysteward.crypto import keyring
from keysteward.crypto.keyring import (
    EnvironmentKeyProvider,
    FileKeyProvider,
    PassphraseKeyProvider,
)
from keysteward.errors import ConfigError


def test_create_key_file_mode_0600(tmp_path: Path) -> None:
    path = tmp_path / "home" / keyring.KEY_FILE_NAME
    assert keyring.create_key_file(path) is True
    assert path.stat().st_mode & 0o777 == 0o600
    assert len(FileKeyProvider(path).master_key()) == 32


def test_create_key_file_keeps_existing(tmp_path: Path) -> None:
    path = tmp_path / keyring.KEY_FILE_NAME
    keyring.create_key_file(path)
    before = path.read_bytes()
    assert keyring.create_key_file(path) is False
    assert path.read_bytes() == before


@pytest.mark.parametrize("mode", [0o640, 0o604, 0o644])
def test_key_file_readable_by_others_rejected(tmp_path: Path, mode: int) -> None:
    path = tmp_path / keyring.KEY_FILE_NAME
    keyring.create_key_file(path)
    os.chmod(path, mode)
    with pytest.raises(ConfigError) as caught:
        FileKeyProvider(path).master_key()
    assert str(path) in str(caught.value)
    assert f"chmod 600 {path}" in str(caught.value)


def test_missing_key_file_names_init(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="keysteward init"):
        FileKeyProvider(tmp_path / "absent.key").master_key()


def test_env_key_round_trip() -> None:
    key = os.urandom(32)
    environ = {keyring.MASTER_KEY_SETTING: base64.b64encode(key).decode()}
    assert EnvironmentKeyProvider(environ).master_key() == key


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        (base64.b64encode(b"x" * 16).decode(), "16 bytes, expected 32"),
        ("not base64!", "not base64"),
    ],
)
def test_env_key_bad_value_named(value: str, expected: str) -> None:
    provider = EnvironmentKeyProvider({keyring.MASTER_KEY_SETTING: value})
    with pytest.raises(ConfigError) as caught:
        provider.master_key()
    assert keyring.MASTER_KEY_SETTING in str(caught.value)
    assert expected in str(caught.value)


def test_env_key_missing_named() -> None:
    with pytest.raises(ConfigError, match="KEYSTEWARD_MASTER_KEY is not set"):
        EnvironmentKeyProvider({}).master_key()


def test_unknown_provider_named(tmp_path: Path) -> None:
    with pytest.raises(ConfigError) as caught:
        keyring.key_provider(tmp_path, {keyring.PROVIDER_SETTING: "vaultish"})
    assert "KEYSTEWARD_KEY_PROVIDER='vaultish'" in str(caught.value)
    assert "file, passphrase, env" in str(caught.value)


def test_passphrase_key_stable_and_distinct(tmp_path: Path) -> None:
    params = tmp_path / keyring.PASSPHRASE_PARAMS_FILE_NAME
    # Small costs keep the test fast; the defaults follow RFC 9106.
    keyring.create_passphrase_params(params, time_cost=1, memory_cost=8, parallelism=1)
    first = PassphraseKeyProvider(params, {keyring.PASSPHRASE_SETTING: "correct horse"})
    again = PassphraseKeyProvider(params, {keyring.PASSPHRASE_SETTING: "correct horse"})
    other = PassphraseKeyProvider(params, {keyring.PASSPHRASE_SETTING: "wrong horse"})
    assert len(first.master_key()) == 32
    assert first.master_key() == again.master_key()
    assert first.master_key() != other.master_key()


def test_passphrase_params_stored(tmp_path: Path) -> None:
    params_path = tmp_path / keyring.PASSPHRASE_PARAMS_FILE_NAME
    keyring.create_passphrase_params(params_path)
    params = keyring.read_passphrase_params(params_path)
    assert params.time_cost == keyring.DEFAULT_ARGON2_TIME_COST
    assert params.memory_cost == keyring.DEFAULT_ARGON2_MEMORY_KIB
    assert len(params.salt) == keyring.ARGON2_SALT_BYTES
    assert params_path.stat().st_mode & 0o777 == 0o600


def test_passphrase_missing_without_terminal(tmp_path: Path) -> None:
    params = tmp_path / keyring.PASSPHRASE_PARAMS_FILE_NAME
    keyring.create_passphrase_params(params, time_cost=1, memory_cost=8, parallelism=1)
    with pytest.raises(ConfigError, match="KEYSTEWARD_PASSPHRASE is not set"):
        PassphraseKeyProvider(params, {}).master_key()


def test_prepare_provider_creates_key_file(tmp_path: Path) -> None:
    message = keyring.prepare_key_provider(tmp_path, {})
    assert message.startswith("created master key file")
    assert (tmp_path / keyring.KEY_FILE_NAME).exists()
    assert keyring.prepare_key_provider(tmp_path, {}).startswith("kept")
