"""Build rotatable secrets, PostgreSQL roles and Redis users for rotation tests.

Target roles and users get random names and random passwords built at run
time, and are dropped by the fixtures that create them.
"""

import base64
import os
import secrets
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

import psycopg
import redis
from psycopg import sql

from keysteward.credentials.models import Credential, CredentialKind
from keysteward.crypto.keyring import MASTER_KEY_SETTING, EnvironmentKeyProvider
from keysteward.db import Store
from keysteward.identities.models import Person, ServiceAccount
from keysteward.tokens.principals import find_principal
from keysteward.tokens.services import issue_api_token
from keysteward.vault.keys import KeyRing
from keysteward.vault.services import SecretMetadata, put_secret

POSTGRES_ADMIN_DSN = "postgresql://postgres@127.0.0.1:5432/postgres"
REDIS_ADMIN_URL = "redis://127.0.0.1:6379/0"
ACTOR = "operator:test"


def random_master_key() -> str:
    return base64.b64encode(os.urandom(32)).decode()


def keyring_for(master_key: str) -> KeyRing:
    return KeyRing(EnvironmentKeyProvider({MASTER_KEY_SETTING: master_key}))


def random_password() -> str:
    return "Pw" + secrets.token_hex(16)


def add_rotatable_secret(
    store: Store,
    keyring: KeyRing,
    name: str,
    value: bytes | None,
    attributes: dict[str, Any],
    *,
    kind: str = CredentialKind.PASSWORD,
    held_by_person: bool = False,
    rotation_days: int | None = None,
    system_id: int | None = None,
) -> int:
    """Store a credential with ``attributes`` and its secret; return its id."""
    with store.session() as session:
        owner = Person(name=f"Owner {name}", email=f"owner.{name}@example.com")
        session.add(owner)
        session.flush()
        credential = Credential(
            name=f"{name} credential",
            kind=kind,
            source="test",
            source_id=name,
            owner_id=owner.id,
            system_id=system_id,
            holder_person_id=owner.id if held_by_person else None,
            attributes=attributes,
        )
        session.add(credential)
        session.flush()
        metadata = SecretMetadata(
            credential_id=credential.id,
            owner_id=owner.id,
            rotation_days=rotation_days,
        )
        if value is not None:
            put_secret(session, keyring, name, value, actor=ACTOR, metadata=metadata)
        return credential.id


def add_api_token_secret(
    store: Store, keyring: KeyRing, name: str, *, grace_hours: float = 24
) -> int:
    """Create a service account, issue it a token and vault the token."""
    with store.session() as session:
        owner = Person(name="Bot Owner", email=f"bot.owner.{name}@example.com")
        account = ServiceAccount(name=f"svc-{name}", owner=owner, purpose="test")
        session.add_all([owner, account])
        session.flush()
        principal = find_principal(session, f"service_account:svc-{name}")
        token = issue_api_token(session, principal, actor=ACTOR).token
    return add_rotatable_secret(
        store,
        keyring,
        name,
        token.encode(),
        {
            "rotator": "api_token",
            "principal": f"service_account:svc-{name}",
            "grace_hours": grace_hours,
        },
        kind=CredentialKind.API_KEY,
    )


@dataclass
class PostgresRole:
    name: str
    password: str


@contextmanager
def postgres_role() -> Iterator[PostgresRole]:
    """Create a login role with a random name and password; drop it after."""
    role = PostgresRole(f"ks_rot_{secrets.token_hex(4)}", random_password())
    with psycopg.connect(POSTGRES_ADMIN_DSN, autocommit=True) as admin:
        verifier = admin.pgconn.encrypt_password(
            role.password.encode(), role.name.encode(), b"scram-sha-256"
        )
        admin.execute(
            sql.SQL("CREATE ROLE {} LOGIN PASSWORD {}").format(
                sql.Identifier(role.name), sql.Literal(verifier.decode())
            )
        )
    try:
        yield role
    finally:
        with psycopg.connect(POSTGRES_ADMIN_DSN, autocommit=True) as admin:
            admin.execute(
                sql.SQL("DROP ROLE IF EXISTS {}").format(sql.Identifier(role.name))
            )


def postgres_attributes(role: str) -> dict[str, Any]:
    return {
        "rotator": "postgres",
        "host": "127.0.0.1",
        "port": 5432,
        "role": role,
        "database": "postgres",
        "admin_secret": "pg-admin",
    }


@dataclass
class RedisUser:
    name: str
    password: str


@contextmanager
def redis_user() -> Iterator[RedisUser]:
    """Create an ACL user with a random name and password; delete it after."""
    user = RedisUser(f"ks_rot_{secrets.token_hex(4)}", random_password())
    admin = redis.Redis.from_url(REDIS_ADMIN_URL)
    admin.execute_command(
        "ACL", "SETUSER", user.name, "on", ">" + user.password, "~ks:*", "+ping"
    )
    try:
        yield user
    finally:
        admin.acl_deluser(user.name)
        admin.close()


def redis_attributes(user: str, grace_hours: float = 0) -> dict[str, Any]:
    return {
        "rotator": "redis",
        "host": "127.0.0.1",
        "port": 6379,
        "user": user,
        "admin_secret": "redis-admin",
        "grace_hours": grace_hours,
    }


def store_admin_secrets(store: Store, keyring: KeyRing) -> None:
    """Vault the admin connections the postgres and redis rotators read."""
    with store.session() as session:
        put_secret(
            session, keyring, "pg-admin", POSTGRES_ADMIN_DSN.encode(), actor=ACTOR
        )
        put_secret(
            session, keyring, "redis-admin", REDIS_ADMIN_URL.encode(), actor=ACTOR
        )


def redis_password_works(user: str, password: str) -> bool:
    client = redis.Redis(host="127.0.0.1", port=6379, username=user, password=password)
    try:
        return bool(client.ping())
    except redis.AuthenticationError:
        return False
    finally:
        client.close()


def postgres_password_is_set(role: str, password: str) -> bool:
    """Return True when ``password`` is the role's stored password.

    The local server trusts 127.0.0.1, so connecting proves nothing; the
    stored SCRAM verifier is checked instead.
    """
    from keysteward.rotation.rotators.postgres import password_matches_verifier

    with psycopg.connect(POSTGRES_ADMIN_DSN, autocommit=True) as admin:
        row = admin.execute(
            "SELECT rolpassword FROM pg_authid WHERE rolname = %s", (role,)
        ).fetchone()
    assert row is not None
    return password_matches_verifier(password.encode(), role, row[0])
