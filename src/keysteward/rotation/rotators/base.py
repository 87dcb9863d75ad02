"""The rotator protocol, the context each step gets, and the rotator registry.

Rotators are found through the ``keysteward.rotators`` entry-point group, so
another package can add one by declaring, in its ``pyproject.toml``::

    [project.entry-points."keysteward.rotators"]
    mysql = "acme_rotators.mysql:MySqlRotator"

The entry point loads to a class (or factory) called with no arguments.
"""

import secrets
import string
from collections.abc import Callable
from dataclasses import dataclass
from datetime import timedelta
from importlib.metadata import entry_points
from typing import Any, Protocol, runtime_checkable

from sqlalchemy.orm import Session

from keysteward.credentials.models import Credential
from keysteward.rotation.errors import RotatorConfigError, RotatorNotFoundError
from keysteward.vault.keys import KeyRing
from keysteward.vault.services import decrypt_version, find_version

ENTRY_POINT_GROUP = "keysteward.rotators"
GENERATED_PASSWORD_CHARS = 40
# Letters and digits only, so generated passwords need no quoting in URLs,
# connection strings or shells.
PASSWORD_ALPHABET = string.ascii_letters + string.digits


@dataclass
class RotationTarget:
    """The context of one rotator step: the open transaction and the target config.

    ``session`` is the step's transaction: anything the rotator writes to
    the store commits together with the step's new state. ``config`` comes
    from the ``attributes`` of the secret's linked credential.
    """

    session: Session
    keyring: KeyRing
    secret_name: str
    config: dict[str, Any]
    credential: Credential | None
    actor: str

    def setting(self, key: str, default: Any = None) -> Any:
        """Return config value ``key``; raise RotatorConfigError if missing."""
        value = self.config.get(key, default)
        if value is None:
            raise RotatorConfigError(
                f"rotation of secret {self.secret_name!r} needs {key!r} in the "
                "attributes of its credential; add it with the inventory import"
            )
        return value

    def vault_value(self, name: str) -> bytes:
        """Decrypt the current value of vault secret ``name`` (admin secrets)."""
        row = find_version(self.session, name, None)
        return decrypt_version(self.session, self.keyring, row)


@runtime_checkable
class Rotator(Protocol):
    """Generates, applies, verifies and revokes values on one kind of target.

    Every method MUST be idempotent: a step killed after the target changed
    but before the store committed runs again on resume. ``apply`` gets the
    value to install and the value it replaces, and is also how a rollback
    puts the old value back.
    """

    name: str
    # True when a person supplies the new value (SaaS consoles).
    manual: bool

    def grace_period(self, target: RotationTarget) -> timedelta:
        """Return how long the old value stays valid after promotion."""
        ...

    def generate(self, target: RotationTarget) -> bytes:
        """Return a new value; it may also write to ``target.session``."""
        ...

    def apply(self, target: RotationTarget, value: bytes, replaced: bytes) -> None:
        """Make ``value`` valid on the target, next to or in place of ``replaced``."""
        ...

    def verify(self, target: RotationTarget, value: bytes) -> bool:
        """Return True when ``value`` authenticates on the target."""
        ...

    def revoke(self, target: RotationTarget, value: bytes) -> None:
        """Make ``value`` invalid on the target; a no-op if it already is."""
        ...


def generate_password(length: int = GENERATED_PASSWORD_CHARS) -> bytes:
    """Return a random password of letters and digits (about 5.95 bits each)."""
    return "".join(secrets.choice(PASSWORD_ALPHABET) for _ in range(length)).encode()


def _builtin_rotators() -> dict[str, Callable[[], Any]]:
    from keysteward.rotation.rotators.api_token import ApiTokenRotator
    from keysteward.rotation.rotators.manual import ManualRotator
    from keysteward.rotation.rotators.postgres import PostgresRotator
    from keysteward.rotation.rotators.redis import RedisRotator

    return {
        "api_token": ApiTokenRotator,
        "manual": ManualRotator,
        "postgres": PostgresRotator,
        "redis": RedisRotator,
    }


def available_rotators() -> dict[str, Callable[[], Any]]:
    """Return rotator factories by name: built-ins, then entry points.

    The built-ins are listed here as well as in keysteward's own entry points
    so they work from a source checkout that was never pip-installed.
    """
    factories = _builtin_rotators()
    for entry in entry_points(group=ENTRY_POINT_GROUP):
        factories[entry.name] = entry.load
    return factories


def load_rotator(name: str) -> Rotator:
    """Return a new instance of rotator ``name``, or raise RotatorNotFoundError."""
    factories = available_rotators()
    factory = factories.get(name)
    if factory is None:
        raise RotatorNotFoundError(
            f"rotator {name!r} not found; available: {', '.join(sorted(factories))}. "
            f"Install a package that registers it in the {ENTRY_POINT_GROUP!r} "
            "entry-point group"
        )
    loaded = factory()
    # An entry point's load() returns the class; the built-ins are classes.
    rotator = loaded() if isinstance(loaded, type) else loaded
    if not isinstance(rotator, Rotator):
        raise RotatorConfigError(
            f"rotator {name!r} does not implement generate, apply, verify and "
            "revoke; fix the package that registers it"
        )
    return rotator
