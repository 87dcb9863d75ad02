"""Vault fixtures: a key ring over a random master key, and principals with roles."""

import base64
import os
from collections.abc import Callable

import pytest

from keysteward.authz.models import Permission, Role, RoleGrant
from keysteward.authz.services import mark_policy_changed
from keysteward.crypto.keyring import MASTER_KEY_SETTING, EnvironmentKeyProvider
from keysteward.db import Store
from keysteward.identities.models import Person, ServiceAccount
from keysteward.tokens.principals import Principal, PrincipalType
from keysteward.vault.keys import KeyRing


def keyring_with_random_key() -> KeyRing:
    encoded = base64.b64encode(os.urandom(32)).decode()
    return KeyRing(EnvironmentKeyProvider({MASTER_KEY_SETTING: encoded}))


@pytest.fixture
def keyring() -> KeyRing:
    return keyring_with_random_key()


@pytest.fixture
def other_keyring() -> KeyRing:
    """A key ring over a different master key than ``keyring``."""
    return keyring_with_random_key()


@pytest.fixture
def make_account(store: Store) -> Callable[..., Principal]:
    """Create a service account holding a role with the given permissions."""

    def make(name: str, *permissions: str) -> Principal:
        with store.session() as session:
            owner = Person(name=f"Owner of {name}", email=f"{name}@example.com")
            account = ServiceAccount(name=name, owner=owner, purpose="test")
            role = Role(name=f"{name}-role")
            for text in permissions:
                system, resource, action = text.split(":")
                role.permissions.append(
                    Permission(system=system, resource=resource, action=action)
                )
            session.add_all([owner, account, role])
            session.flush()
            session.add(
                RoleGrant(
                    role_id=role.id,
                    principal_type=PrincipalType.SERVICE_ACCOUNT,
                    principal_id=account.id,
                )
            )
            mark_policy_changed(session)
            return Principal(PrincipalType.SERVICE_ACCOUNT, account.id, name)

    return make
