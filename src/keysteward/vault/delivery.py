"""Delivering secrets to a process at run time, through its environment."""

import os
import re
import subprocess
from collections.abc import Callable, Mapping
from pathlib import Path

import yaml
from sqlalchemy import select

from keysteward.crypto.keyring import MASTER_KEY_SETTING, PASSPHRASE_SETTING
from keysteward.db import Store
from keysteward.errors import InvalidInputError
from keysteward.tokens.principals import Principal, find_principal
from keysteward.vault.keys import KeyRing
from keysteward.vault.models import Secret
from keysteward.vault.services import read_secret

ENV_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")
# Never passed to the child, because they decrypt the whole store.
WITHHELD_VARIABLES = (MASTER_KEY_SETTING, PASSPHRASE_SETTING)


def load_env_map(path: Path) -> dict[str, str]:
    """Read a YAML mapping of ``ENV_NAME: secret-name`` and check its shape."""
    try:
        data = yaml.safe_load(path.read_text())
    except OSError as exc:
        raise InvalidInputError(f"cannot read {path}: {exc.strerror}") from None
    except yaml.YAMLError as exc:
        raise InvalidInputError(f"invalid YAML in {path}: {exc}") from None
    if not isinstance(data, dict) or not data:
        raise InvalidInputError(
            f"{path} must be a YAML mapping of ENV_NAME: secret-name, with one entry "
            "or more"
        )
    mapping: dict[str, str] = {}
    for key, value in data.items():
        if not isinstance(key, str) or not ENV_NAME.match(key):
            raise InvalidInputError(
                f"invalid environment variable name {key!r} in {path}; use letters, "
                "digits and '_', not starting with a digit"
            )
        if not isinstance(value, str) or not value:
            raise InvalidInputError(
                f"invalid secret name {value!r} for {key} in {path}; give a name"
            )
        mapping[key] = value
    return mapping


def default_env_name(secret_name: str) -> str:
    """Return the variable name for a secret: upper case, other characters '_'."""
    name = re.sub(r"[^A-Z0-9_]", "_", secret_name.upper())
    return f"_{name}" if name[0].isdigit() else name


def collect_secrets(
    store: Store,
    keyring: KeyRing,
    principal: Principal,
    mapping: Mapping[str, str] | None,
    warn: Callable[[str], None],
    source: str | None = None,
) -> dict[str, str]:
    """Read the secrets ``principal`` may read; return them by variable name.

    Every read, allowed or denied, is recorded in the same transaction.
    Without ``mapping`` every secret is tried under its default variable name.
    """
    values: dict[str, str] = {}
    with store.session() as session:
        if mapping is None:
            names = session.scalars(select(Secret.name).order_by(Secret.name))
            mapping = {default_env_name(name): name for name in names}
        for variable, name in mapping.items():
            read = read_secret(
                session, keyring, principal, name, source=source, via="run"
            )
            if read.secret is None:
                warn(f"{principal.label} may not read secret {name}; {variable} unset")
                continue
            try:
                values[variable] = read.secret.value.decode()
            except UnicodeDecodeError:
                raise InvalidInputError(
                    f"secret {name} is not UTF-8 text, so it cannot be passed in "
                    f"the environment variable {variable}"
                ) from None
    return values


def run_with_secrets(
    store: Store,
    keyring: KeyRing,
    service_account: str,
    command: list[str],
    *,
    env_map: Path | None,
    warn: Callable[[str], None],
    source: str | None = None,
) -> int:
    """Start ``command`` with the account's secrets in its environment.

    Returns the child's exit code, or 128 + N when signal N ended it, as a
    shell reports it.
    """
    if not command:
        raise InvalidInputError(
            "no command given; write it after `--`, e.g. "
            "keysteward run --as NAME -- python job.py"
        )
    mapping = load_env_map(env_map) if env_map is not None else None
    with store.session() as session:
        principal = find_principal(
            session, f"service_account:{service_account}", active_only=True
        )
    injected = collect_secrets(store, keyring, principal, mapping, warn, source)
    environment = {
        key: value for key, value in os.environ.items() if key not in WITHHELD_VARIABLES
    }
    environment.update(injected)
    try:
        completed = subprocess.run(command, env=environment, check=False)  # noqa: S603
    except FileNotFoundError:
        raise InvalidInputError(
            f"command {command[0]!r} not found; check the name and PATH"
        ) from None
    if completed.returncode < 0:
        return 128 + abs(completed.returncode)
    return completed.returncode
