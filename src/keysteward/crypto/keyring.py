"""Key providers: where the master key comes from.

The master key wraps the vault's key-encryption keys and keys the signing of
access tokens. It never enters the database. Three providers exist, chosen
with ``KEYSTEWARD_KEY_PROVIDER``:

- ``file`` (default): a base64 key file, ``$KEYSTEWARD_HOME/master.key``,
  created by ``keysteward init`` with mode 0600.
- ``passphrase``: Argon2id of ``KEYSTEWARD_PASSPHRASE`` (or a prompt) with the
  salt and cost parameters kept in ``$KEYSTEWARD_HOME/master-key-params.json``.
- ``env``: ``KEYSTEWARD_MASTER_KEY``, the base64 encoding of 32 bytes.

A cloud KMS can be added later as another class that satisfies
``KeyProvider``.
"""

import base64
import binascii
import getpass
import json
import os
import stat
import sys
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Protocol

from argon2.low_level import Type, hash_secret_raw

from keysteward.crypto.aead import KEY_BYTES, generate_key
from keysteward.errors import ConfigError

KEY_FILE_NAME = "master.key"
PASSPHRASE_PARAMS_FILE_NAME = "master-key-params.json"  # noqa: S105
PROVIDER_SETTING = "KEYSTEWARD_KEY_PROVIDER"
PASSPHRASE_SETTING = "KEYSTEWARD_PASSPHRASE"  # noqa: S105 (a setting name)
MASTER_KEY_SETTING = "KEYSTEWARD_MASTER_KEY"
PROVIDER_NAMES = ("file", "passphrase", "env")

# Argon2id costs from RFC 9106, section 4, second recommended option
# (3 passes, 64 MiB, 4 lanes), for machines without 2 GiB to spare.
DEFAULT_ARGON2_TIME_COST = 3
DEFAULT_ARGON2_MEMORY_KIB = 64 * 1024
DEFAULT_ARGON2_PARALLELISM = 4
ARGON2_SALT_BYTES = 16


class KeyProvider(Protocol):
    """A source of the 32-byte master key."""

    name: str

    def master_key(self) -> bytes:
        """Return the master key.

        Raises ConfigError naming the setting and the fix when the key is
        missing or malformed.
        """
        ...


def _decode_master_key(encoded: str, origin: str, fix: str) -> bytes:
    try:
        key = base64.b64decode(encoded.strip(), validate=True)
    except (binascii.Error, ValueError):
        raise ConfigError(
            f"invalid master key in {origin}: not base64. {fix}"
        ) from None
    if len(key) != KEY_BYTES:
        raise ConfigError(
            f"invalid master key in {origin}: {len(key)} bytes, expected "
            f"{KEY_BYTES}. {fix}"
        )
    return key


@dataclass
class FileKeyProvider:
    """The master key in a key file that only its owner may read."""

    path: Path
    name: str = "file"

    def master_key(self) -> bytes:
        if not self.path.exists():
            raise ConfigError(
                f"master key file {self.path} is missing; restore {KEY_FILE_NAME} "
                f"from your backup to {self.path}. Only a new store without "
                "secrets may get a new key from `keysteward init`"
            )
        mode = stat.S_IMODE(self.path.stat().st_mode)
        if mode & 0o077:
            raise ConfigError(
                f"master key file {self.path} is readable by group or others "
                f"(mode {mode:o}); run `chmod 600 {self.path}`"
            )
        return _decode_master_key(
            self.path.read_text(),
            str(self.path),
            "Restore the file from your backup of the key.",
        )


def create_key_file(path: Path) -> bool:
    """Write a new random master key to ``path`` with mode 0600.

    Returns False, writing nothing, when the file already exists, so running
    ``init`` twice can never replace a key that encrypts data.
    """
    path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
    try:
        descriptor = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:
        return False
    with os.fdopen(descriptor, "w") as handle:
        handle.write(base64.b64encode(generate_key()).decode() + "\n")
    return True


@dataclass
class EnvironmentKeyProvider:
    """The master key in the ``KEYSTEWARD_MASTER_KEY`` environment variable."""

    # Excluded from repr because it contains the key or passphrase.
    environ: Mapping[str, str] = field(default_factory=lambda: os.environ, repr=False)
    name: str = "env"

    def master_key(self) -> bytes:
        encoded = self.environ.get(MASTER_KEY_SETTING)
        if not encoded:
            raise ConfigError(
                f"{MASTER_KEY_SETTING} is not set; set it to the base64 encoding of "
                f"{KEY_BYTES} random bytes, e.g. `openssl rand -base64 32`"
            )
        return _decode_master_key(
            encoded,
            MASTER_KEY_SETTING,
            f"Set it to the base64 encoding of {KEY_BYTES} random bytes.",
        )


@dataclass
class PassphraseKeyProvider:
    """The master key derived from a passphrase with Argon2id."""

    params_path: Path
    # Excluded from repr because it contains the key or passphrase.
    environ: Mapping[str, str] = field(default_factory=lambda: os.environ, repr=False)
    name: str = "passphrase"
    _cached: bytes | None = field(default=None, repr=False)

    def master_key(self) -> bytes:
        if self._cached is None:
            params = read_passphrase_params(self.params_path)
            passphrase = self._passphrase()
            self._cached = hash_secret_raw(
                passphrase.encode(),
                params.salt,
                time_cost=params.time_cost,
                memory_cost=params.memory_cost,
                parallelism=params.parallelism,
                hash_len=KEY_BYTES,
                type=Type.ID,
            )
        return self._cached

    def _passphrase(self) -> str:
        passphrase = self.environ.get(PASSPHRASE_SETTING)
        if passphrase:
            return passphrase
        if sys.stdin.isatty():
            return getpass.getpass("keysteward passphrase: ")
        raise ConfigError(
            f"{PASSPHRASE_SETTING} is not set and no terminal is attached to prompt "
            "for the passphrase; set it in the environment"
        )


def create_passphrase_params(
    path: Path,
    time_cost: int = DEFAULT_ARGON2_TIME_COST,
    memory_cost: int = DEFAULT_ARGON2_MEMORY_KIB,
    parallelism: int = DEFAULT_ARGON2_PARALLELISM,
) -> bool:
    """Write a new Argon2id salt and its costs to ``path``, mode 0600.

    Returns False, writing nothing, when the file already exists.
    """
    params = {
        "algorithm": "argon2id",
        "salt": base64.b64encode(os.urandom(ARGON2_SALT_BYTES)).decode(),
        "time_cost": time_cost,
        "memory_cost": memory_cost,
        "parallelism": parallelism,
    }
    path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
    try:
        descriptor = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:
        return False
    with os.fdopen(descriptor, "w") as handle:
        json.dump(params, handle, indent=2)
    return True


@dataclass(frozen=True)
class Argon2Params:
    salt: bytes
    time_cost: int
    memory_cost: int
    parallelism: int


def read_passphrase_params(path: Path) -> Argon2Params:
    """Return the salt and Argon2id costs stored in ``path``."""
    if not path.exists():
        raise ConfigError(
            f"passphrase parameters file {path} is missing; restore "
            f"{PASSPHRASE_PARAMS_FILE_NAME} from your backup to {path}. Only a new "
            "store without secrets may get new parameters from `keysteward init`"
        )
    try:
        raw = json.loads(path.read_text())
        return Argon2Params(
            salt=base64.b64decode(raw["salt"], validate=True),
            time_cost=int(raw["time_cost"]),
            memory_cost=int(raw["memory_cost"]),
            parallelism=int(raw["parallelism"]),
        )
    except (ValueError, KeyError, TypeError, binascii.Error):
        raise ConfigError(
            f"invalid passphrase parameters file {path}; restore it from your backup"
        ) from None


def provider_name(environ: Mapping[str, str] | None = None) -> str:
    """Return the configured provider name, or raise ConfigError naming the setting."""
    environ = os.environ if environ is None else environ
    name = (environ.get(PROVIDER_SETTING) or "file").strip().lower()
    if name not in PROVIDER_NAMES:
        raise ConfigError(
            f"invalid {PROVIDER_SETTING}={name!r}; use one of "
            f"{', '.join(PROVIDER_NAMES)}"
        )
    return name


def key_provider(home: Path, environ: Mapping[str, str] | None = None) -> KeyProvider:
    """Return the key provider that ``KEYSTEWARD_KEY_PROVIDER`` selects."""
    environ = os.environ if environ is None else environ
    name = provider_name(environ)
    if name == "env":
        return EnvironmentKeyProvider(environ)
    if name == "passphrase":
        return PassphraseKeyProvider(home / PASSPHRASE_PARAMS_FILE_NAME, environ)
    return FileKeyProvider(home / KEY_FILE_NAME)


def key_material_path(
    home: Path, environ: Mapping[str, str] | None = None
) -> Path | None:
    """Return the file the configured provider derives the master key from.

    Returns None for the ``env`` provider, which reads no file.
    """
    name = provider_name(environ)
    if name == "file":
        return home / KEY_FILE_NAME
    if name == "passphrase":
        return home / PASSPHRASE_PARAMS_FILE_NAME
    return None


def prepare_key_provider(home: Path, environ: Mapping[str, str] | None = None) -> str:
    """Create the key file or passphrase parameters the provider needs, if missing.

    Returns a one-line description of what was done, for ``keysteward init``.
    """
    name = provider_name(environ)
    if name == "file":
        path = home / KEY_FILE_NAME
        created = create_key_file(path)
        return f"{'created' if created else 'kept'} master key file {path}"
    if name == "passphrase":
        path = home / PASSPHRASE_PARAMS_FILE_NAME
        created = create_passphrase_params(path)
        return f"{'created' if created else 'kept'} passphrase parameters {path}"
    return f"master key read from {MASTER_KEY_SETTING}"
