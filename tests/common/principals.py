"""Key rings over random master keys, and service accounts holding one role."""

import base64
import os

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


def create_account(store: Store, name: str, *permissions: str) -> Principal:
    """Create service account ``name`` holding role ``NAME-role`` of ``permissions``."""
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
